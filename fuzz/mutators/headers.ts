// Mutations of the header block: giant fields, folding gone wild, thousands of fields, raw 8-bit
// bytes, and damaged syntax (addresses, Message-IDs, colons, the empty line that ends the block).
import type { Rng } from '../rng.js';
import {
  ALNUM,
  fieldName,
  fieldsNamed,
  headerFields,
  joinMessage,
  lineEnd,
  PRINTABLE,
  randomText,
  splitMessage,
  toBytes,
  toText,
  type Mutator,
  type Parts,
} from './text.js';

/** Rebuilds the message from its header fields, changed by `edit`. */
function editFields(
  bytes: Buffer,
  edit: (fields: string[], eol: string, parts: Parts) => string[],
): Buffer {
  const parts = splitMessage(toText(bytes));
  const eol = lineEnd(parts.head);
  const fields = headerFields(parts.head);
  // the last field has no line end of its own (the separator follows it): give it one
  const last = fields.length - 1;
  if (last >= 0 && !fields[last]!.endsWith('\n')) fields[last] += eol;
  const edited = edit(fields, eol, parts).join('');
  const head = edited.endsWith(eol) ? edited.slice(0, -eol.length) : edited;
  return toBytes(joinMessage({ ...parts, head }));
}

/** A field at a random place among the others. */
function insertField(rng: Rng, fields: string[], field: string): string[] {
  const at = rng.int(0, fields.length);
  return [...fields.slice(0, at), field, ...fields.slice(at)];
}

/** Folds `value` after every `every` characters (or at its spaces), with `eol` + `indent`. */
function fold(
  value: string,
  every: number,
  eol: string,
  indent: string,
): string {
  const pieces: string[] = [];
  for (let at = 0; at < value.length; at += every) {
    pieces.push(value.slice(at, at + every));
  }
  return pieces.join(`${eol}${indent}`);
}

/**
 * One field from 1 KiB to 1.5 MiB (the structure check refuses a header block over 1 MiB), on
 * one line or folded: an unknown field, or one the parser reads (Subject, To, References...).
 */
export const giantHeader: Mutator = (bytes, rng) =>
  editFields(bytes, (fields, eol) => {
    const name = rng.pick([
      'X-Giant',
      'Subject',
      'To',
      'Cc',
      'References',
      'Received',
      'Content-Type',
      'Message-ID',
    ]);
    const length = rng.logInt(1024, 1536 * 1024);
    const unit = rng.pick([
      'a',
      'x@example.com, ',
      '<id@example.com> ',
      '=?utf-8?B?w6k=?= ',
      `${randomText(rng, 40, PRINTABLE)} `,
      'a; b=c; ',
    ]);
    let value = unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
    if (rng.chance(0.5)) value = fold(value, rng.int(40, 998), eol, ' ');
    return insertField(rng, fields, `${name}: ${value}${eol}`);
  });

/**
 * Folding: a field folded at every character, folds of whitespace-only lines, a fold straight
 * after the colon, or thousands of continuation lines.
 */
export const foldedHeader: Mutator = (bytes, rng) =>
  editFields(bytes, (fields, eol) => {
    if (fields.length === 0) return [`Subject:${eol} folded${eol}`];
    const i = rng.int(0, fields.length - 1);
    const field = fields[i]!.replace(/\r?\n$/, '');
    let folded: string;
    switch (rng.int(0, 3)) {
      case 0:
        folded = fold(field, 1, eol, rng.pick([' ', '\t']));
        break;
      case 1: {
        const blank = `${eol}${rng.pick([' ', '\t', '  \t'])}`;
        folded = field.replace(/ /g, () => blank.repeat(rng.int(1, 4)) + ' ');
        break;
      }
      case 2:
        folded = field.replace(/:\s*/, `:${eol} ${eol}\t`);
        break;
      default: {
        const lines = rng.logInt(100, 50_000);
        folded = `${field}${`${eol} ${randomText(rng, 3, ALNUM)}`.repeat(lines)}`;
      }
    }
    fields[i] = `${folded}${eol}`;
    return fields;
  });

/** How much one repeated field may come to, at most: well past the fuzzer's size limit. */
const REPEATED_BYTES = 16 * 1024 * 1024;

/** From 10 to 60,000 fields: new ones, or one field repeated (To, Received, Message-ID...). */
export const manyHeaders: Mutator = (bytes, rng) =>
  editFields(bytes, (fields, eol) => {
    let count = rng.logInt(10, 60_000);
    const existing = fields.filter(f => fieldName(f) !== '');
    const repeated =
      rng.chance(0.5) && existing.length > 0 ? rng.pick(existing) : undefined;
    // a field already made giant, repeated 60,000 times, would pass V8's longest string
    if (repeated) {
      count = Math.min(
        count,
        Math.max(10, Math.floor(REPEATED_BYTES / repeated.length)),
      );
    }
    const extra = Array.from(
      { length: count },
      (_, n) =>
        repeated ??
        `X-Fuzz-${n}: ${randomText(rng, rng.int(0, 30), ALNUM)}${eol}`,
    );
    return rng.chance(0.5) ? [...extra, ...fields] : [...fields, ...extra];
  });

const EIGHT_BIT = [
  '\xe9t\xe9',
  '\xc3\xa9t\xc3\xa9',
  '\xff\xfe\xfd',
  '\xc3\x28',
  '\xe2\x82',
  '\xf0\x9f\x98\x80',
  '\xed\xa0\x80',
  '\x80\x81\x82\x83',
  '\xef\xbb\xbf',
  '\xe2\x80\xae',
];

/** Raw 8-bit bytes (latin-1, UTF-8, broken UTF-8, a BOM, bidi) in header names and values. */
export const eightBitHeaders: Mutator = (bytes, rng) =>
  editFields(bytes, (fields, eol) => {
    const named = fieldsNamed(fields, [
      'subject',
      'from',
      'to',
      'cc',
      'reply-to',
      'message-id',
      'in-reply-to',
      'content-type',
      'content-disposition',
    ]);
    for (let n = rng.int(1, 4); n > 0; n--) {
      const raw = rng.pick(EIGHT_BIT).repeat(rng.logInt(1, 200));
      if (named.length > 0 && rng.chance(0.7)) {
        const i = rng.pick(named);
        const field = fields[i]!;
        const start = field.indexOf(':') + 1;
        const at = rng.int(start, Math.max(start, field.length - eol.length));
        fields[i] = field.slice(0, at) + raw + field.slice(at);
      } else {
        const name = rng.chance(0.5) ? `X-${raw}` : 'X-Eight-Bit';
        fields.splice(rng.int(0, fields.length), 0, `${name}: ${raw}${eol}`);
      }
    }
    return fields;
  });

const DAMAGE: ReadonlyArray<(rng: Rng) => string> = [
  () => 'From: "unclosed <a@example.com>',
  () => 'From: <<a@example.com>>',
  () => 'From: a@@example.com, @, <>',
  () => 'From: group: a@example.com, (comment (nested (deep)) b@example.com;',
  () => 'To: undisclosed-recipients:;',
  () => 'To: ' + '"a\\'.repeat(500),
  () => 'From: ' + '('.repeat(5000),
  () => 'Message-ID: <>',
  () => 'Message-ID: < spaces in id @ example >',
  () => 'Message-ID: <a@b> <c@d>',
  () => 'In-Reply-To: ' + '<x@y>'.repeat(2000),
  () => 'References: <unclosed@example.com',
  () => 'Date: Feb 30 99999 25:61:61 +9999',
  () => 'X-Priority: 99999999999999999999',
  () => 'Importance: \0high',
  () => 'No colon at all in this line',
  () => ': empty name',
  () => 'Subject ::: colons',
  () => ' starts with a fold',
  () => 'MIME-Version: 9.9',
  () => 'Content-Type:',
  () => 'Content-Type: multipart/mixed',
  () => 'Content-Type: text/plain; charset',
  () => 'Content-Disposition: attachment; filename="../../etc/passwd\0.exe"',
  () => "Content-Disposition: attachment; filename*0*=utf-8''%ZZ; filename*5=x",
  rng => `Subject: ${'=?utf-8?Q?'.repeat(rng.int(1, 400))}`,
];

/**
 * Damaged syntax: broken addresses and Message-IDs, a field without a colon or a name, a
 * header block that starts with a fold, or no empty line between the header block and body.
 */
export const headerSyntax: Mutator = (bytes, rng) => {
  if (rng.chance(0.15)) {
    const { head, body } = splitMessage(toText(bytes));
    const eol = lineEnd(head);
    return toBytes(`${head}${eol}${body}`);
  }
  return editFields(bytes, (fields, eol) => {
    for (let n = rng.int(1, 3); n > 0; n--) {
      const field = `${rng.pick(DAMAGE)(rng)}${eol}`;
      const replace = fieldsNamed(fields, [fieldName(field)]);
      if (replace.length > 0 && rng.chance(0.5)) {
        fields[rng.pick(replace)] = field;
      } else fields.splice(rng.int(0, fields.length), 0, field);
    }
    return fields;
  });
};
