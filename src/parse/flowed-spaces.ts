// PURE: format=flowed; delsp=yes text whose sender did not double the space it wrapped at.

/** A flowed line's last word and the next line's first letter: a break between two words. */
const WORD_BREAK = /(?:^|[ >])[A-Za-z]+ $/;
const STARTS_WITH_LETTER = /^[A-Za-z]/;

/**
 * The decoded bytes (as a latin1 string, one character a byte) of a `format=flowed; delsp=yes`
 * part, with a space added at each soft break that falls between two words when the sender
 * shows it does not know DelSp; `text` itself otherwise.
 *
 * RFC 3676 (4.2, 4.1): with DelSp=yes the one space before a flowed line's CRLF is deleted when
 * the lines are joined, so a sender that wraps at a space must write two. A sender that writes
 * one (MimeKit issue 1130: `there is ` / `a "You do not...`) has its words run together by a
 * strict reader ("isa"). Its mistake shows in the part: no flowed line ends in two spaces, yet
 * a flowed line ends with an ASCII word and one space and the next line begins with a letter.
 * Then each such break is given back its space, so the strict decoding after this keeps one
 * ("is a"), as readers that ignore DelSp show it. Breaks within CJK text (the use DelSp was
 * made for), in a URL or other token, and every part that doubles its spaces somewhere are
 * left as RFC 3676 reads them. The QP `=20` of such a line says nothing: quoted-printable must
 * encode every space before a line break so.
 */
export function restoreWordSpaces(text: string): string {
  const lines = text.split('\n');
  const content = (line: string) =>
    line.endsWith('\r') ? line.slice(0, -1) : line;
  let witnesses = 0;
  for (const [i, raw] of lines.entries()) {
    const line = content(raw);
    if (!line.endsWith(' ') || isSignature(line)) continue;
    if (line.endsWith('  ')) return text;
    const next = lines[i + 1];
    if (next !== undefined && isWordBreak(line, content(next))) witnesses++;
  }
  if (witnesses === 0) return text;
  return lines
    .map((raw, i) => {
      const line = content(raw);
      const next = lines[i + 1];
      if (next === undefined || isSignature(line)) return raw;
      if (!isWordBreak(line, content(next))) return raw;
      return raw.endsWith('\r') ? `${line} \r` : `${line} `;
    })
    .join('\n');
}

function isWordBreak(line: string, next: string): boolean {
  return (
    WORD_BREAK.test(line) && STARTS_WITH_LETTER.test(next.replace(/^>+ ?/, ''))
  );
}

/** `-- ` (after quote marks): the signature separator, never a flowed line. */
function isSignature(line: string): boolean {
  return /^>* ?-- $/.test(line);
}
