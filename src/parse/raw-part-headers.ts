// PURE: what a part's raw header lines say that the parser reads wrongly.

/** A raw header line as the MIME splitter keeps it: its bytes as latin1, folds included. */
export interface RawHeaderLine {
  key: string;
  line: string;
}

/**
 * The iCalendar object a sender wrote where the part's header belongs (`BEGIN:VCALENDAR` ...
 * `END:VCALENDAR`, then the part's real header lines): its bytes, or undefined. The parser reads
 * each calendar line as a header and the part's body is empty; Apache James recovers the
 * calendar as the body ("ICS in header"), and so do we.
 */
export function calendarInHeader(
  lines: readonly RawHeaderLine[],
): Buffer | undefined {
  if (!/^BEGIN:VCALENDAR\s*$/i.test(lines[0]?.line ?? '')) return undefined;
  const end = lines.findIndex(l => /^END:VCALENDAR\s*$/i.test(l.line));
  if (end < 0) return undefined;
  const calendar = lines.slice(0, end + 1).map(l => `${l.line}\r\n`);
  return Buffer.from(calendar.join(''), 'latin1');
}

/** `%` and two hex digits: a valid escape of RFC 2231's extended value. */
const ESCAPE = /%[0-9A-Fa-f]{2}/y;

/**
 * The filename of a part's RFC 2231 extended parameter (`filename*=utf-8''...`, else
 * Content-Type's `name*=`) when it holds a `%` that starts no valid escape, decoded with that
 * `%` kept as written (`utf-8''4%P001!.DOC` is `4%P001!.DOC`); undefined otherwise, when the
 * parser's own decoding is right. The parser turns every `%` into `=` and decodes
 * quoted-printable, so an invalid escape comes out as `=` (`4=P001!.DOC`).
 */
export function invalidEscapeName(
  lines: readonly RawHeaderLine[],
): string | undefined {
  for (const [header, param] of [
    ['content-disposition', 'filename'],
    ['content-type', 'name'],
  ] as const) {
    const line = lines.find(l => l.key === header)?.line;
    const value = line ? extendedValue(line, param) : undefined;
    if (value === undefined) continue;
    return hasInvalidEscape(value.text)
      ? decodeExtended(value.charset, value.text)
      : undefined;
  }
  return undefined;
}

/** The extended value of `param` (one `param*=`, or `param*0*=`, `param*1*=`...), if any. */
function extendedValue(
  line: string,
  param: string,
): { charset: string; text: string } | undefined {
  const unfolded = line.replace(/\r?\n[ \t]/g, ' ');
  const pieces = new Map<number, string>();
  const pattern = new RegExp(
    `(?:^|;)\\s*${param}\\*(?:(\\d+)\\*?)?\\s*=\\s*("[^"]*"|[^;]*)`,
    'gi',
  );
  for (const [, nr, value] of unfolded.matchAll(pattern)) {
    pieces.set(
      nr === undefined ? 0 : Number(nr),
      value!.trim().replace(/^"|"$/g, ''),
    );
  }
  if (pieces.size === 0) return undefined;
  const joined = [...pieces.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, piece]) => piece)
    .join('');
  const match = /^([^']*)'[^']*'(.*)$/s.exec(joined);
  if (!match) return undefined;
  return { charset: match[1]!.trim() || 'us-ascii', text: match[2]! };
}

function hasInvalidEscape(text: string): boolean {
  for (let i = text.indexOf('%'); i >= 0; i = text.indexOf('%', i + 1)) {
    ESCAPE.lastIndex = i;
    if (!ESCAPE.test(text)) return true;
  }
  return false;
}

/** The value's bytes (valid escapes decoded, all else as written) in its charset. */
function decodeExtended(charset: string, text: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    ESCAPE.lastIndex = i;
    if (text[i] === '%' && ESCAPE.test(text)) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(text.charCodeAt(i) & 0xff);
    }
  }
  try {
    return new TextDecoder(charset).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}
