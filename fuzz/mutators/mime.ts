// Mutations of the MIME structure: damaged boundaries, deep nesting and part counts on both sides
// of the structure check's limits (100 levels, 1000 parts), bad and lying charsets, and wrong or
// broken transfer encodings.
import type { Rng } from '../rng.js';
import {
  ALNUM,
  boundariesOf,
  fieldName,
  headerFields,
  insertAt,
  lineEnd,
  randomText,
  splitMessage,
  toBytes,
  toText,
  type Mutator,
} from './text.js';

/** Offsets where `--boundary` starts a line (delimiters and closing delimiters). */
function delimiterOffsets(text: string, boundary: string): number[] {
  const needle = `--${boundary}`;
  const found: number[] = [];
  for (
    let at = text.indexOf(needle);
    at >= 0;
    at = text.indexOf(needle, at + 1)
  ) {
    if (at === 0 || text[at - 1] === '\n' || text[at - 1] === '\r') {
      found.push(at);
    }
  }
  return found;
}

/** The message with its top Content-Type replaced by (or given) `contentType`. */
function withContentType(text: string, contentType: string): string {
  const { head, sep, body } = splitMessage(text);
  const eol = lineEnd(head);
  const fields = headerFields(head).filter(
    f => fieldName(f) !== 'content-type',
  );
  const kept = fields.join('').replace(/\r?\n$/, '');
  const joined = kept ? `${kept}${eol}` : '';
  return `${joined}Content-Type: ${contentType}${sep || eol + eol}${body}`;
}

/**
 * A boundary damaged: closing delimiters removed or doubled, a delimiter's character changed,
 * the declared value changed (empty, huge, a prefix of the real one), trailing junk on a
 * delimiter line, or a message that is not multipart declared as one.
 */
export const boundaryDamage: Mutator = (bytes, rng) => {
  const text = toText(bytes);
  const boundaries = boundariesOf(text);
  if (boundaries.length === 0 || rng.chance(0.05)) {
    const value = rng.pick(['nowhere', '', '--', ' ', '"']);
    return toBytes(
      withContentType(text, `multipart/mixed; boundary="${value}"`),
    );
  }
  const boundary = rng.pick(boundaries);
  const offsets = delimiterOffsets(text, boundary);
  const delimiter = `--${boundary}`;
  const at = offsets.length > 0 ? rng.pick(offsets) : -1;
  switch (rng.int(0, 6)) {
    case 0:
      return toBytes(text.split(`${delimiter}--`).join(''));
    case 1:
      return toBytes(
        text.split(delimiter).join(rng.pick(['', '-', delimiter.slice(1)])),
      );
    case 2: {
      if (at < 0) break;
      const i = at + rng.int(0, delimiter.length - 1);
      const changed = String.fromCharCode((text.charCodeAt(i) + 1) & 0xff);
      return toBytes(text.slice(0, i) + changed + text.slice(i + 1));
    }
    case 3: {
      const eol = lineEnd(text);
      const extra = `${delimiter}--${eol}`.repeat(rng.int(1, 3));
      const empty = `${delimiter}${eol}`.repeat(rng.logInt(1, 2000));
      return toBytes(
        insertAt(
          text,
          at < 0 ? text.length : at,
          rng.chance(0.5) ? extra : empty,
        ),
      );
    }
    case 4: {
      const value = rng.pick([
        '',
        boundary.slice(0, rng.int(0, boundary.length)),
        `${boundary}${boundary}`,
        'x'.repeat(rng.logInt(71, 100_000)),
        `${boundary}"; boundary="other`,
        ` ${boundary} `,
      ]);
      return toBytes(
        text.split(boundary).join(value).replace(delimiter, `--${value}`),
      );
    }
    case 5:
      if (at < 0) break;
      return toBytes(
        insertAt(
          text,
          at + delimiter.length,
          rng.pick([' \t ', 'XYZ', '--junk', '\0', '=']),
        ),
      );
    default:
      if (at < 0) break;
      return toBytes(text.slice(0, at) + text.slice(at + delimiter.length));
  }
  return toBytes(text.replace(delimiter, ''));
};

/** The message's own Content-* fields (or a text/plain type) and the rest of its header block. */
function contentFields(
  head: string,
  eol: string,
): { content: string; rest: string } {
  const fields = headerFields(head);
  const last = fields.length - 1;
  if (last >= 0 && !fields[last]!.endsWith('\n')) fields[last] += eol;
  const content = fields.filter(f => fieldName(f).startsWith('content-'));
  const rest = fields.filter(f => !fieldName(f).startsWith('content-'));
  return {
    content:
      content.length > 0 ? content.join('') : `Content-Type: text/plain${eol}`,
    rest: rest.join(''),
  };
}

/**
 * The message's body wrapped in 2 to 160 levels of multiparts (some message/rfc822), mostly
 * closed, sometimes not: the structure check refuses more than 100 levels.
 */
export const deepNesting: Mutator = (bytes, rng) => {
  const { head, body } = splitMessage(toText(bytes));
  const eol = lineEnd(head);
  const { content, rest } = contentFields(head, eol);
  const depth = rng.logInt(2, 160);
  const salt = randomText(rng, 8, ALNUM);
  const unclosed = rng.chance(0.1);
  const rfc822 = rng.chance(0.2);
  let part = `${content}${eol}${body}`;
  for (let level = depth - 1; level >= 0; level--) {
    if (rfc822 && level % 3 === 1) {
      part = `Content-Type: message/rfc822${eol}${eol}Subject: level ${level}${eol}${part}`;
      continue;
    }
    const boundary = `fz${level}_${salt}`;
    const subtype = rng.pick(['mixed', 'alternative', 'related', 'digest']);
    const close =
      unclosed && rng.chance(0.5) ? '' : `${eol}--${boundary}--${eol}`;
    part =
      `Content-Type: multipart/${subtype}; boundary="${boundary}"${eol}${eol}` +
      `--${boundary}${eol}${part}${close}`;
  }
  return toBytes(`${rest}${part}`);
};

/** A multipart/mixed of 2 to 1500 parts (the limit is 1000), the original body first. */
export const manyParts: Mutator = (bytes, rng) => {
  const { head, body } = splitMessage(toText(bytes));
  const eol = lineEnd(head);
  const { content, rest } = contentFields(head, eol);
  const count = rng.logInt(2, 1500);
  const boundary = `fzparts_${randomText(rng, 8, ALNUM)}`;
  const attachment = rng.chance(0.3);
  const small = Array.from({ length: count - 1 }, (_, n) =>
    attachment
      ? `Content-Type: application/octet-stream; name="f${n}.bin"${eol}` +
        `Content-Transfer-Encoding: base64${eol}${eol}AAEC${eol}`
      : `Content-Type: text/plain${eol}${eol}part ${n}${eol}`,
  );
  const parts = [`${content}${eol}${body}`, ...small];
  const delimiter = `${eol}--${boundary}${eol}`;
  return toBytes(
    `${rest}Content-Type: multipart/mixed; boundary="${boundary}"${eol}${eol}` +
      `--${boundary}${eol}${parts.join(delimiter)}${eol}--${boundary}--${eol}`,
  );
};

const BOGUS_CHARSETS = [
  '',
  '"',
  'x-unknown',
  'utf-8\0',
  '../../../etc/passwd',
  'iso-8859-99',
  '*',
  '=?utf-8?',
  '%00',
  'utf8;charset=latin1',
  'binary',
  'unicode-1-1-utf-7',
  ' UTF-8 ',
  '\xe9\xff',
];

const REAL_CHARSETS = [
  'utf-8',
  'utf-7',
  'utf-16',
  'utf-16le',
  'utf-16be',
  'utf-32',
  'iso-2022-jp',
  'shift_jis',
  'euc-kr',
  'ks_c_5601-1987',
  'big5',
  'gb2312',
  'gb18030',
  'koi8-r',
  'windows-1251',
  'windows-1252',
  'iso-8859-1',
  'us-ascii',
];

/** Every charset label (parameters, encoded-words, HTML meta) replaced by one from `labels`. */
function relabel(text: string, rng: Rng, labels: readonly string[]): string {
  return text
    .replace(/(charset\s*=\s*)("[^"\r\n]*"|[^\s;">]+)/gi, (_m, key: string) =>
      rng.chance(0.8)
        ? `${key}"${rng.pick(labels)}"`
        : `${key}${rng.pick(labels)}`,
    )
    .replace(
      /=\?([^?\s]+)\?([bBqQ])\?/g,
      (_m, _label: string, enc: string) => `=?${rng.pick(labels)}?${enc}?`,
    );
}

/**
 * Bad charsets: unknown, empty, huge, with NUL or path characters, in every label of the
 * message, and a Subject of encoded-words in them.
 */
export const badCharset: Mutator = (bytes, rng) => {
  const labels = [...BOGUS_CHARSETS, 'x'.repeat(rng.logInt(100, 100_000))];
  let text = relabel(toText(bytes), rng, labels);
  if (rng.chance(0.5)) {
    const eol = lineEnd(text);
    const words = Array.from({ length: rng.int(1, 20) }, () => {
      const payload = rng.bytes(rng.int(0, 60)).toString('base64');
      return `=?${rng.pick(labels)}?B?${payload}?=`;
    });
    text = `Subject: ${words.join(' ')}${eol}${text}`;
  }
  return toBytes(text);
};

/**
 * Lying charsets: each label swapped for another real one (UTF-8 text said to be ISO-2022-JP,
 * Shift_JIS said to be UTF-16...), sometimes with bytes invalid in the new one put in the body.
 */
export const lyingCharset: Mutator = (bytes, rng) => {
  let text = relabel(toText(bytes), rng, REAL_CHARSETS);
  if (!/charset/i.test(text)) {
    const { head } = splitMessage(text);
    const eol = lineEnd(head);
    const type = `Content-Type: text/plain; charset=${rng.pick(REAL_CHARSETS)}${eol}`;
    text = `${type}${text}`;
  }
  if (rng.chance(0.4)) {
    const { head } = splitMessage(text);
    const junk = rng.pick([
      '\x1b$B',
      '\x1b(J\x1b$)C',
      '+AGEAYgBj-+',
      '\xfe\xff\xd8',
      '\x81\x00',
    ]);
    text = insertAt(
      text,
      rng.int(head.length, text.length),
      junk.repeat(rng.logInt(1, 500)),
    );
  }
  return toBytes(text);
};

const ENCODINGS = [
  'base64',
  'quoted-printable',
  '7bit',
  '8bit',
  'binary',
  'x-uuencode',
  'uuencode',
  'bogus',
  ' BASE64 ',
  '',
  'base64; quoted-printable',
];

/**
 * Transfer encodings: the declared one changed (base64 said of text, quoted-printable of base64),
 * a second one declared, or the encoded bytes broken (stray characters, `=` in the wrong place,
 * `=ZZ` escapes, a cut last quantum).
 */
export const transferEncoding: Mutator = (bytes, rng) => {
  let text = toText(bytes);
  if (rng.chance(0.5)) {
    text = text.replace(
      /^(content-transfer-encoding:)[^\r\n]*/gim,
      (m, key: string) =>
        rng.chance(0.7) ? `${key} ${rng.pick(ENCODINGS)}` : m,
    );
    if (rng.chance(0.3)) {
      const eol = lineEnd(text);
      text = `Content-Transfer-Encoding: ${rng.pick(ENCODINGS)}${eol}${text}`;
    }
    return toBytes(text);
  }
  const { head } = splitMessage(text);
  for (let n = rng.logInt(1, 50); n > 0; n--) {
    const junk = rng.pick([
      '!',
      '=',
      '==',
      '=ZZ',
      '=\r',
      '=\n',
      '====',
      '\xff',
      '-',
      '?=',
    ]);
    text = insertAt(text, rng.int(head.length, text.length), junk);
  }
  return toBytes(text);
};
