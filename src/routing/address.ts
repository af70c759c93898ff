// Address helpers for routing: lower-casing and the +subaddress (RFC 5233) split.

export interface SplitAddress {
  /** local part without the subaddress, lower-cased */
  local: string;
  /** the text after the first "+", as written, or undefined */
  detail?: string;
  /** domain, lower-cased */
  domain: string;
}

/** Splits `user+detail@Domain` into its parts; returns null for a string with no "@". */
export function splitAddress(address: string): SplitAddress | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  const localPart = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  const plus = localPart.indexOf('+');
  if (plus <= 0) return { local: localPart.toLowerCase(), domain };
  const detail = localPart.slice(plus + 1);
  return {
    local: localPart.slice(0, plus).toLowerCase(),
    detail: detail === '' ? undefined : detail,
    domain,
  };
}
