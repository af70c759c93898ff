// Lying charset labels: decode what the bytes are when the label cannot be right.
import { isAscii } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';

/** What mailparser asks for a text part's bytes: a stream decoding them to UTF-8. */
export interface BodyDecoder {
  decodeStream(charset: string): Transform;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A label of a Unicode encoding (UTF-8, -16, -32, -7, UCS-2...): never second-guessed. */
function isUnicodeLabel(label: string): boolean {
  return /^(utf|ucs|unicode)/.test(
    label.toLowerCase().replace(/[^a-z0-9]/g, ''),
  );
}

/** Whether `bytes` hold a byte over 0x7f and are valid UTF-8 throughout. */
export function isMultibyteUtf8(bytes: Uint8Array): boolean {
  if (isAscii(bytes)) return false;
  try {
    UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Multi-byte legacy charsets (CJK): text in them is never only Latin-1 letters. */
function isMultibyteLegacy(label: string): boolean {
  return /^(big5|gb|cp9(36|49|50)|x?(euc|sjis|shiftjis|mskanji|windows3[1-9]j)|ksc|cn|hz|iso2022)/.test(
    label.toLowerCase().replace(/[^a-z0-9]/g, ''),
  );
}

/**
 * How bytes labelled `label` are to be read, when the label cannot be right; undefined when it
 * can (then the label's decoder reads them):
 *
 * - the label names a legacy charset and the bytes are valid UTF-8 with at least one multi-byte
 *   sequence: they are UTF-8 (a web form or a client writing UTF-8 under a GB2312 or ISO-8859-1
 *   label). Legacy text is almost never valid UTF-8 by chance: a lone accented letter, or a run
 *   of GB2312 or Shift_JIS pairs, breaks it;
 * - except under a multi-byte (CJK) label when that UTF-8 holds only Latin-1 letters: then it is
 *   the label's bytes once read as Latin-1 and written as UTF-8 (double encoding); undone, the
 *   text is the label's decoding of those Latin-1 bytes, when that decoding is clean.
 */
export function overrideDecoding(
  label: string,
  bytes: Uint8Array,
): string | undefined {
  if (isUnicodeLabel(label) || !isMultibyteUtf8(bytes)) return undefined;
  const text = UTF8.decode(bytes);
  // eslint-disable-next-line no-control-regex -- the ASCII range, controls included
  if (isMultibyteLegacy(label) && /^[\u0000-\u00ff]*$/.test(text)) {
    const undone = strictDecode(label, Buffer.from(text, 'latin1'));
    if (undone !== undefined) return undone;
  }
  return text;
}

/** `bytes` decoded as `label` by TextDecoder; undefined when it does not know it or fails. */
function strictDecode(label: string, bytes: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder(label, { fatal: true }).decode(bytes);
    // ICU maps some bytes it cannot read to replacement or private-use characters
    return text !== '' && !/[\ufffd\ue000-\uf8ff]/.test(text)
      ? text
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `base`'s decoder (`seen` is told each legacy label it decodes), except that a text part labelled with a legacy charset whose bytes are
 * UTF-8 (prefersUtf8) is decoded as UTF-8. The part's bytes are gathered first (the parser
 * keeps the whole decoded text anyway), then judged.
 */
export function utf8AwareDecoder(
  base: BodyDecoder,
  seen?: (legacyLabel: string) => void,
): BodyDecoder {
  return {
    decodeStream(charset: string): Transform {
      if (isUnicodeLabel(charset)) return base.decodeStream(charset);
      seen?.(charset);
      return new JudgingDecoder(charset, base);
    },
  };
}

class JudgingDecoder extends Transform {
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly charset: string,
    private readonly base: BodyDecoder,
  ) {
    super();
  }

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: TransformCallback,
  ): void {
    this.chunks.push(chunk);
    done();
  }

  override _flush(done: TransformCallback): void {
    const bytes = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    const override = overrideDecoding(this.charset, bytes);
    if (override !== undefined) {
      done(null, Buffer.from(override, 'utf8'));
      return;
    }
    let decoder: Transform;
    try {
      decoder = this.base.decodeStream(this.charset);
    } catch (err) {
      done(err as Error);
      return;
    }
    decoder.on('data', (out: Buffer | string) => this.push(out));
    decoder.once('error', err => done(err));
    decoder.once('end', () => done());
    decoder.end(bytes);
  }
}

/**
 * A raw 8-bit header value (no encoded words; the bytes as received) read with the message's own
 * charset `label`: overrideDecoding's reading when the label cannot be right, else the label's
 * own when TextDecoder knows it and the bytes are not UTF-8; undefined to keep the parser's.
 */
export function decodeRawHeader(
  bytes: Uint8Array,
  label: string | undefined,
): string | undefined {
  if (!label || isUnicodeLabel(label)) return undefined;
  if (isAscii(bytes)) return undefined;
  if (isMultibyteUtf8(bytes)) return overrideDecoding(label, bytes);
  return strictDecode(label, bytes);
}

/** A header's raw bytes (the first line of `key`), unfolded, when it holds no encoded word. */
export function rawHeaderValue(
  lines: Array<{ key: string; line: string }>,
  key: string,
): Buffer | undefined {
  const line = lines.find(entry => entry.key === key)?.line;
  if (line === undefined || line.includes('=?')) return undefined;
  const value = line
    .slice(line.indexOf(':') + 1)
    .replace(/\r?\n(?=[ \t])/g, '');
  // mailparser's header lines hold the bytes as received, one character per byte
  return Buffer.from(value.trim(), 'latin1');
}

/**
 * A raw 8-bit Subject in a legacy charset, decoded with the message's own charset label (the
 * top-level Content-Type's, else, a multipart, the first legacy label of a text part).
 */
export function rawSubjectOf(
  raw: Buffer | undefined,
  label: string | undefined,
): string | undefined {
  return raw ? decodeRawHeader(raw, label) : undefined;
}
