// What the mutators share: a message's bytes as a latin1 string (one character per byte, so any
// byte survives the round trip), its header block and body, its line end, and header fields.
import type { Rng } from '../rng.js';

/** A mutation: pure, the same output for the same bytes and the same generator state. */
export type Mutator = (bytes: Buffer, rng: Rng) => Buffer;

/** One character per byte, whatever the bytes: the mutators edit this and turn it back. */
export function toText(bytes: Buffer): string {
  return bytes.toString('latin1');
}

/** The bytes of a toText() string (characters above U+00FF never occur in one). */
export function toBytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** A message split where its header block ends. */
export interface Parts {
  /** the header block, without the empty line that ends it */
  head: string;
  /** the empty line that ended it (`\r\n\r\n` or `\n\n`), or '' when there was none */
  sep: string;
  body: string;
}

/** Splits a message at its first empty line (CRLF or bare LF, whichever comes first). */
export function splitMessage(text: string): Parts {
  const crlf = text.indexOf('\r\n\r\n');
  const lf = text.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return { head: text, sep: '', body: '' };
  if (lf < 0 || (crlf >= 0 && crlf < lf)) {
    return {
      head: text.slice(0, crlf),
      sep: '\r\n\r\n',
      body: text.slice(crlf + 4),
    };
  }
  return { head: text.slice(0, lf), sep: '\n\n', body: text.slice(lf + 2) };
}

/** The parts joined again; with no separator given back, an empty line is put between. */
export function joinMessage(parts: Parts): string {
  const sep = parts.sep || `${lineEnd(parts.head)}${lineEnd(parts.head)}`;
  return `${parts.head}${sep}${parts.body}`;
}

/** The line end a text uses: CRLF when it has any, else LF. */
export function lineEnd(text: string): string {
  return text.includes('\r\n') || !text.includes('\n') ? '\r\n' : '\n';
}

/**
 * A header block as its fields, each with its continuation lines, the line end that follows it
 * included (so joining the list gives the block back exactly).
 */
export function headerFields(head: string): string[] {
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < head.length; i++) {
    if (head[i] !== '\n') continue;
    const following = head[i + 1];
    if (following === ' ' || following === '\t') continue;
    fields.push(head.slice(start, i + 1));
    start = i + 1;
  }
  if (start < head.length) fields.push(head.slice(start));
  return fields;
}

/** The name of a header field (before its colon), lower-cased; '' when it has no colon. */
export function fieldName(field: string): string {
  const colon = field.indexOf(':');
  return colon < 0 ? '' : field.slice(0, colon).trim().toLowerCase();
}

/** Indexes of the fields whose name is one of `names` (lower-case). */
export function fieldsNamed(
  fields: string[],
  names: readonly string[],
): number[] {
  const out: number[] = [];
  fields.forEach((field, i) => {
    if (names.includes(fieldName(field))) out.push(i);
  });
  return out;
}

/** `text` with `insert` put at `at`. */
export function insertAt(text: string, at: number, insert: string): string {
  return text.slice(0, at) + insert + text.slice(at);
}

/** The offsets where a line starts (0 included), up to `limit` of them, spread over the text. */
export function lineStarts(text: string, limit = 100_000): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0 && starts.length < limit;) {
    if (i + 1 < text.length) starts.push(i + 1);
    i = text.indexOf('\n', i + 1);
  }
  return starts;
}

/** Every boundary parameter value declared in the text (in any header block), in order. */
export function boundariesOf(text: string): string[] {
  const found: string[] = [];
  const pattern = /boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))/gi;
  for (const match of text.matchAll(pattern)) {
    const value = match[1] ?? match[2];
    if (value && !found.includes(value)) found.push(value);
  }
  return found;
}

/** `count` characters drawn from `alphabet`. */
export function randomText(rng: Rng, count: number, alphabet: string): string {
  // a repeated short run, not a draw per character: megabytes stay cheap to make
  const unit = Array.from({ length: Math.min(count, 64) }, () =>
    alphabet.charAt(rng.int(0, alphabet.length - 1)),
  ).join('');
  return unit
    .repeat(Math.ceil(count / Math.max(1, unit.length)))
    .slice(0, count);
}

export const ALNUM =
  'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const PRINTABLE = `${ALNUM} !"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`;
