// Message-ID normalisation: the same id must look the same in ext_msg_id and reply_to_ext_msg_id,
// or the API cannot thread a reply onto its original.

/** Every id of a header value (Message-ID, In-Reply-To, References), normalised, in order. */
export function extractIds(value: string | undefined): string[] {
  if (!value) return [];
  const text = withoutComments(value);
  const raw = text.match(/<[^<>]*>/g) ?? text.split(/[\s,]+/);
  return raw
    .filter(word => !/[()]/.test(word)) // a piece of an unclosed comment
    .map(normaliseId)
    .filter((id): id is string => id !== undefined);
}

/**
 * Removes (comments), nested ones too, in one linear pass (a header of 30,000 nested parentheses
 * must not stall the daemon). mailparser may have wrapped each word of a comment in brackets
 * (`<(resent)>`, `<(two> <words)>`), so brackets inside a comment do not end it. An unmatched
 * parenthesis stays, and the word holding it is dropped by the caller.
 */
function withoutComments(value: string): string {
  const out: string[] = [];
  const opens: number[] = [];
  for (const char of value) {
    if (char === '(') {
      opens.push(out.length);
      out.push(char);
    } else if (char === ')' && opens.length > 0) {
      out.length = opens.pop()!;
      out.push(' ');
    } else {
      out.push(char);
    }
  }
  return out.join('');
}

/**
 * One id with exactly one pair of angle brackets and no whitespace; undefined when empty. The
 * brackets are counted off both ends, not matched with `/>+$/`, which tries every start of a run
 * of `>` not at the end: 64 KiB of `>` then `x` took seconds.
 */
export function normaliseId(value: string): string | undefined {
  const compact = value.replace(/\s+/g, '');
  let start = 0;
  while (compact.charCodeAt(start) === 0x3c) start++;
  let end = compact.length;
  while (end > start && compact.charCodeAt(end - 1) === 0x3e) end--;
  const bare = compact.slice(start, end);
  return bare ? `<${bare}>` : undefined;
}

/**
 * Whether an id can name a thread: `<id-left@id-right>`, both sides non-empty. A piece of an id
 * that a broken fold cut in two (`<invalid.>` of `<invalid.\r\n something@bar.net>`) cannot
 * name the message it meant, and would thread the reply onto nothing.
 */
export function isThreadableId(id: string): boolean {
  return /^<[^<>\s@]+(?:@[^<>\s@]*)*@[^<>\s@]+>$/.test(id);
}

/** The brackets as the API wants them: kept, or stripped for APIs that store bare ids. */
export function formatId(id: string, brackets: boolean): string {
  return brackets ? id : id.slice(1, -1);
}

/** A stable id for a message without a Message-ID: the same bytes always give the same id. */
export function generatedId(digest: string): string {
  return `<${digest.slice(0, 40)}@mailbridge.generated>`;
}
