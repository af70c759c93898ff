// Mutations that know nothing of MIME: truncation, bit flips, spliced ranges, NUL bytes, overlong
// lines, and line ends (bare CR, bare LF, mixed).
import {
  ALNUM,
  insertAt,
  lineStarts,
  PRINTABLE,
  randomText,
  splitMessage,
  toBytes,
  toText,
  type Mutator,
} from './text.js';

/** Cuts the message short: anywhere, inside its header block, or a few bytes before its end. */
export const truncate: Mutator = (bytes, rng) => {
  if (bytes.length === 0) return bytes;
  const headLength = splitMessage(toText(bytes)).head.length;
  const where = rng.int(0, 2);
  const at =
    where === 0
      ? rng.int(0, bytes.length - 1)
      : where === 1
        ? rng.int(0, Math.max(0, headLength - 1))
        : Math.max(0, bytes.length - rng.int(1, 16));
  return Buffer.from(bytes.subarray(0, at));
};

/** Flips from 1 to 64 random bits; a third of the time only in the header block. */
export const bitFlip: Mutator = (bytes, rng) => {
  if (bytes.length === 0) return bytes;
  const out = Buffer.from(bytes);
  const headLength = splitMessage(toText(bytes)).head.length;
  const span = rng.chance(1 / 3) && headLength > 0 ? headLength : out.length;
  for (let n = rng.logInt(1, 64); n > 0; n--) {
    const at = rng.int(0, span - 1);
    out[at] = (out[at] ?? 0) ^ (1 << rng.int(0, 7));
  }
  return out;
};

/** Deletes, repeats or overwrites a range, or inserts random bytes. */
export const splice: Mutator = (bytes, rng) => {
  const length = bytes.length;
  const start = rng.int(0, length);
  const size = rng.logInt(1, Math.max(1, Math.min(4096, length - start)));
  const before = bytes.subarray(0, start);
  const range = bytes.subarray(start, start + size);
  const after = bytes.subarray(start + size);
  switch (rng.int(0, 3)) {
    case 0:
      return Buffer.concat([before, after]);
    case 1:
      return Buffer.concat([before, range, range, after]);
    case 2:
      return Buffer.concat([before, rng.bytes(range.length), after]);
    default:
      return Buffer.concat([before, rng.bytes(size), bytes.subarray(start)]);
  }
};

/** Puts NUL bytes in: single ones here and there, a run, or in header names and values. */
export const nulBytes: Mutator = (bytes, rng) => {
  let text = toText(bytes);
  const headLength = splitMessage(text).head.length;
  const inHead = rng.chance(0.4) && headLength > 0;
  const span = inHead ? headLength : text.length;
  for (let n = rng.logInt(1, 32); n > 0; n--) {
    const run = rng.chance(0.8) ? 1 : rng.logInt(2, 4096);
    text = insertAt(text, rng.int(0, span), '\0'.repeat(run));
  }
  return toBytes(text);
};

/**
 * A line far over SMTP's 1000 characters, from 999 bytes to 6 MiB: a header value, or a body
 * line of letters, of printable characters, of 8-bit bytes, or of one repeated character.
 */
export const overlongLine: Mutator = (bytes, rng) => {
  const text = toText(bytes);
  const { head } = splitMessage(text);
  const length = rng.logInt(999, 6 * 1024 * 1024);
  const alphabet = rng.pick([
    ALNUM,
    PRINTABLE,
    'a',
    '=',
    '<>',
    '<',
    '>',
    '@',
    '(',
    '\x80\xff\xc3\xa9',
    ' \t',
  ]);
  const line = randomText(rng, length, alphabet);
  if (rng.chance(0.3) && head.length > 0) {
    const name = rng.pick([
      'Subject',
      'X-Long',
      'References',
      'In-Reply-To',
      'Message-ID',
      'To',
      'From',
    ]);
    // a run of one character, then another: where a pattern that backtracks has to give up
    const tail = rng.pick(['', 'x', '@', '<', '>']);
    const at = rng.pick(lineStarts(head));
    return toBytes(insertAt(text, at, `${name}: ${line}${tail}\r\n`));
  }
  const starts = lineStarts(text).filter(at => at > head.length);
  const at = starts.length > 0 ? rng.pick(starts) : text.length;
  const end = rng.chance(0.8) ? '\r\n' : '';
  return toBytes(insertAt(text, at, line + end));
};

/**
 * Line ends made wrong: every CRLF to bare LF or to bare CR, a share of them, CRs doubled, or
 * bare CRs and LFs put inside lines (headers included).
 */
export const lineEnds: Mutator = (bytes, rng) => {
  const text = toText(bytes);
  const share = rng.pick([1, 0.5, 0.05]);
  // a share of the line ends, or all of them when the share drew none
  const some = (pattern: RegExp, to: string) => {
    const out = text.replace(pattern, m => (rng.chance(share) ? to : m));
    return out === text ? text.replace(pattern, to) : out;
  };
  switch (rng.int(0, 4)) {
    case 0:
      return toBytes(some(/\r\n/g, '\n'));
    case 1:
      return toBytes(some(/\r?\n/g, '\r'));
    case 2:
      return toBytes(some(/\r\n/g, '\r\r\n'));
    case 3:
      return toBytes(some(/\n/g, '\n\r'));
    default: {
      let out = text;
      for (let n = rng.logInt(1, 64); n > 0; n--) {
        out = insertAt(out, rng.int(0, out.length), rng.pick(['\r', '\n']));
      }
      return toBytes(out);
    }
  }
};
