// Obsolete and broken header syntax the parser would lose, repaired in the bytes before it reads them.

/** The header block looked at: the structure check refuses a larger one at DATA anyway. */
const MAX_HEAD_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const COLON = 0x3a;

/**
 * The message's bytes with its top-level header block repaired where the parser would lose a
 * header (RFC 5322 4.5 obsolete syntax, and a common breakage), or `raw` itself when there is
 * nothing to repair (the usual case: no copy):
 *
 * - a first line `From  : ...` (white space before the colon, obsolete syntax) is a From header,
 *   not an mbox `From sender date` separator, which the parser drops: it becomes `From: ...`;
 * - a line without a colon that is not folded, inside the header block and followed by a folded
 *   line (`To: Mary Smith` / `__` / `   <mary@example.net>`), belongs to the header above: it is
 *   folded (one space put before it), so the address after it is not lost.
 *
 * Only the first MAX_HEAD_BYTES of `raw` are looked at.
 */
export function repairHeaders(raw: Buffer): Buffer {
  const fixes: Array<{ at: number; remove: number; insert: string }> = [];
  const fromLine = /^From[ \t]+:/.exec(raw.subarray(0, 64).toString('latin1'));
  if (fromLine) {
    fixes.push({ at: 4, remove: fromLine[0].length - 5, insert: '' });
  }
  const limit = Math.min(raw.length, MAX_HEAD_BYTES);
  let start = 0;
  while (start < limit) {
    const end = lineEnd(raw, start, limit);
    if (end === start || (end === start + 1 && raw[start] === CR)) break;
    const next = end + 1;
    if (
      start > 0 &&
      !isFolded(raw, start) &&
      raw.subarray(start, end).indexOf(COLON) < 0 &&
      next < limit &&
      isFolded(raw, next)
    ) {
      fixes.push({ at: start, remove: 0, insert: ' ' });
    }
    start = next;
  }
  const boundary = boundaryFix(raw, start);
  if (boundary) fixes.push(boundary);
  fixes.sort((a, b) => a.at - b.at);
  return fixes.length ? applied(raw, fixes) : raw;
}

/** How far into the body a delimiter is looked for: the preamble is short, when there is one. */
const MAX_PREAMBLE_BYTES = 64 * 1024;

/**
 * The fix of a top-level multipart whose declared boundary is never used, or undefined. A
 * spammer's template (spamscope `mail_malformed_3`) declares `boundary="--=_HsWzsKVZkho"` and
 * delimits with `----=_GlSzQZUbRbpVOpy`: the parser finds no part, and the whole body would be
 * lost as preamble. When the declared delimiter appears nowhere in `raw`, and the body's first
 * line of the delimiter form (`--` and a token) is followed by a header line, that line's token
 * becomes the boundary, as mail readers recover it. `bodyAt` is where the header block ends.
 */
function boundaryFix(
  raw: Buffer,
  bodyAt: number,
): { at: number; remove: number; insert: string } | undefined {
  const head = raw.subarray(0, bodyAt).toString('latin1');
  const type = /^content-type[ \t]*:((?:[^\n]*\n[ \t])*[^\n]*)/im.exec(head);
  if (!type || !/^\s*multipart\//i.test(type[1]!)) return undefined;
  const param = /(;\s*boundary\s*=\s*)("[^"\r\n]*"|[^;\s]+)/i.exec(type[1]!);
  if (!param) return undefined;
  const declared = param[2]!.replace(/^"|"$/g, '');
  if (!declared || raw.includes(`\n--${declared}`, bodyAt, 'latin1')) {
    return undefined;
  }
  const body = raw
    .subarray(bodyAt, bodyAt + MAX_PREAMBLE_BYTES)
    .toString('latin1');
  const found =
    /(?:^|\n)--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?\n[A-Za-z][\w-]*[ \t]*:/.exec(
      body,
    );
  if (!found) return undefined;
  const at =
    type.index + type[0].indexOf(type[1]!) + param.index + param[1]!.length;
  return { at, remove: param[2]!.length, insert: `"${found[1]!}"` };
}

/** The index of the LF ending the line at `start`, or `limit`. */
function lineEnd(raw: Buffer, start: number, limit: number): number {
  const at = raw.indexOf(LF, start);
  return at < 0 || at > limit ? limit : at;
}

function isFolded(raw: Buffer, at: number): boolean {
  return raw[at] === SPACE || raw[at] === TAB;
}

function applied(
  raw: Buffer,
  fixes: Array<{ at: number; remove: number; insert: string }>,
): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (const fix of fixes) {
    parts.push(raw.subarray(from, fix.at), Buffer.from(fix.insert, 'latin1'));
    from = fix.at + fix.remove;
  }
  parts.push(raw.subarray(from));
  return Buffer.concat(parts);
}

/** The headers whose addresses the mapper posts. */
const ADDRESS_HEADERS = new Set(['from', 'to', 'cc', 'reply-to']);

/** An address and nothing else: no space, no brackets, no quotes, one `@` inside. */
const BARE_ADDRESS = /^[^\s@<>"(),;:]+@[^\s@<>"(),;:]+$/;

/**
 * The address headers (`to`, `cc`, ...) written as bare addresses separated by spaces only
 * (`To: tim@example.com concierge@example.com`): no `<`, `"`, `(` or `,` in any of their lines.
 * The parser reads the first address as the address and the others as its display name; the
 * caller turns such a name back into addresses (see splitBareName).
 */
export function bareAddressHeaders(
  lines: ReadonlyArray<{ key: string; line: string }>,
): Set<string> {
  const bare = new Set<string>();
  const mixed = new Set<string>();
  for (const { key, line } of lines) {
    if (!ADDRESS_HEADERS.has(key)) continue;
    const value = line.slice(line.indexOf(':') + 1).trim();
    if (/[<"(,;]/.test(value) || !/\s/.test(value)) mixed.add(key);
    else bare.add(key);
  }
  for (const key of mixed) bare.delete(key);
  return bare;
}

/** The addresses a display name of a bare-address header holds, when it holds nothing else. */
export function splitBareName(name: string): string[] {
  const words = name.trim().split(/\s+/);
  return words.every(word => BARE_ADDRESS.test(word)) ? words : [];
}
