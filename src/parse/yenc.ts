// yEnc-encoded files inside a text part (Usenet style): left out of the text, with a note.

/** A block: `=ybegin ... name=NAME` up to its `=yend` line (or the end of the text). */
const BLOCK = /^=ybegin (.*)$[\s\S]*?(?:^=yend.*$|(?![\s\S]))/gm;

/**
 * The text without its yEnc blocks, each replaced by one line naming the file it held. A yEnc
 * body is 8-bit binary: read as text it is hundreds of replacement and control characters,
 * nothing a reader of the ticket can use. The file is not recovered (the parser has already
 * decoded the part as text, which loses bytes).
 */
export function withoutYenc(text: string): string {
  if (!text.includes('=ybegin ')) return text;
  return text.replace(BLOCK, (_block, header: string) => {
    const name = /\bname=(.*)$/.exec(header)?.[1]?.trim();
    const size = /\bsize=(\d+)/.exec(header)?.[1];
    const what = [
      name ? `"${name}"` : undefined,
      size ? `${size} bytes` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    return `[mailbridge: a yEnc-encoded file${what ? ` (${what})` : ''} was left out]`;
  });
}
