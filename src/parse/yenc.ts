// yEnc-encoded files inside a text part (Usenet style): decoded from the raw bytes when they can
// be, and left out of the text with a note either way.

/** A block: `=ybegin ... name=NAME` up to its `=yend` line (or the end of the text). */
const BLOCK = /^=ybegin (.*)$[\s\S]*?(?:^=yend.*$|(?![\s\S]))/gm;

/** One file a yEnc block held, decoded. */
export interface YencFile {
  name?: string;
  data: Buffer;
}

/**
 * The text without its yEnc blocks, each replaced by one line naming the file it held: "is
 * attached" when `attached` (the files were decoded from the raw bytes), else "was left out".
 * A yEnc body is 8-bit binary: read as text it is hundreds of replacement and control
 * characters, nothing a reader of the ticket can use.
 */
export function withoutYenc(text: string, attached = false): string {
  if (!text.includes('=ybegin ')) return text;
  return text.replace(BLOCK, (_block, header: string) => {
    const { name, size } = yencHeader(header);
    const what = [
      name ? `"${name}"` : undefined,
      size ? `${size} bytes` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    const fate = attached ? 'is attached' : 'was left out';
    return `[mailbridge: a yEnc-encoded file${what ? ` (${what})` : ''} ${fate}]`;
  });
}

function yencHeader(header: string): { name?: string; size?: string } {
  return {
    name: /\bname=(.*)$/.exec(header)?.[1]?.trim() || undefined,
    size: /\bsize=(\d+)/.exec(header)?.[1],
  };
}

const EQUALS = 0x3d;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Every yEnc block of the raw message bytes, decoded: a line starting `=ybegin ` up to a line
 * starting `=yend` (or the end), `=ypart` lines skipped. A block inside a base64 or
 * quoted-printable part is not seen (yEnc travels as raw 8-bit bytes).
 */
export function decodeYencBlocks(raw: Buffer): YencFile[] {
  const files: YencFile[] = [];
  let at = lineStart(raw, raw.indexOf('=ybegin '));
  while (at >= 0) {
    const headerEnd = endOfLine(raw, at);
    const header = raw
      .subarray(at + 8, headerEnd)
      .toString('utf8')
      .replace(/\r$/, '');
    // decoded bytes are never more than the encoded ones
    const out = Buffer.allocUnsafe(raw.length - headerEnd);
    let size = 0;
    let line = headerEnd + 1;
    while (line < raw.length && !startsWith(raw, line, '=yend')) {
      const end = endOfLine(raw, line);
      if (!startsWith(raw, line, '=ypart ')) {
        size = decodeLine(raw, line, end, out, size);
      }
      line = end + 1;
    }
    files.push({
      name: yencHeader(header).name,
      data: Buffer.from(out.subarray(0, size)),
    });
    at = lineStart(raw, raw.indexOf('=ybegin ', line));
  }
  return files;
}

/** `at` when it starts a line, else the next `=ybegin ` that does; -1 when none. */
function lineStart(raw: Buffer, at: number): number {
  while (at > 0 && raw[at - 1] !== LF) at = raw.indexOf('=ybegin ', at + 1);
  return at;
}

function endOfLine(raw: Buffer, at: number): number {
  const end = raw.indexOf(LF, at);
  return end < 0 ? raw.length : end;
}

function startsWith(raw: Buffer, at: number, text: string): boolean {
  return raw.subarray(at, at + text.length).toString('latin1') === text;
}

/**
 * One line's bytes into `out` from `size`: each is its value minus 42, `=` escaping the next
 * (minus 64 more). Returns the new size.
 */
function decodeLine(
  raw: Buffer,
  start: number,
  end: number,
  out: Buffer,
  size: number,
): number {
  let n = size;
  for (let i = start; i < end; i++) {
    let byte = raw[i]!;
    if (byte === CR) continue;
    if (byte === EQUALS && i + 1 < end) byte = raw[++i]! - 64;
    out[n++] = (byte - 42 + 512) % 256;
  }
  return n;
}
