// The journal's on-disk format: segment names, the salted head line, record framing and
// checksums, and the reading of a segment a process left behind (parseSegment).
//
//   J1 <salt>\n                     (32 random hex digits, drawn when the segment is created)
//   M <id> <length> <checksum>\n<length bytes: the spool header line, then the raw message>
//   D <id>\n                        (the message is out of the journal: delivered, or parked)
//
// Why the salt and what counts as torn or damaged: docs/spool-internals.md, "Journal format".
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const SEGMENT_NAME = /^journal-[0-9a-z]+-\d+\.log$/;

/** A queue id as the journal takes it: letters and digits (newQueueId), nothing a path reads. */
export const ID = /^[0-9A-Za-z]{1,64}$/;

/** A segment's first line: its format and salt. */
const HEAD = /^J1 ([0-9a-f]{32})\n/;
const HEAD_BYTES = 'J1 \n'.length + 32;

/** Whether a file name of a claim folder is a journal segment. */
export function isSegmentName(name: string): boolean {
  return SEGMENT_NAME.test(name);
}

/** A new segment's file name: its creation time and a counter of this journal's segments. */
export function segmentName(now: number, counter: number): string {
  return `journal-${now.toString(36)}-${counter}.log`;
}

/** The segments of a claim folder among its file names, as paths. */
export function segmentsOf(dir: string, names: readonly string[]): string[] {
  return names.filter(isSegmentName).map(n => join(dir, n));
}

/** A new segment's salt: keys its records' checksums, so no mailed-on copy passes for one. */
export function newSalt(): string {
  return randomBytes(16).toString('hex');
}

/** A segment's first line, naming its format and salt. */
export function headLine(salt: string): Buffer {
  return Buffer.from(`J1 ${salt}\n`);
}

/** The checksum of a record (its segment's salt, id and bytes), as its frame line carries it. */
export function checksum(
  salt: string,
  id: string,
  content: readonly Buffer[],
): string {
  const hash = createHash('sha1').update(salt).update(id);
  for (const piece of content) hash.update(piece);
  return hash.digest('base64url');
}

/** The frame line of a message record of `length` bytes. */
export function frameLine(id: string, length: number, sum: string): Buffer {
  return Buffer.from(`M ${id} ${length} ${sum}\n`);
}

/** The line that marks a message done. */
export function doneLine(id: string): Buffer {
  return Buffer.from(`D ${id}\n`);
}

/** A message found in a segment, not marked done. */
export interface SegmentRecord {
  id: string;
  /** byte offset of its bytes in the segment */
  offset: number;
  /** the record's bytes: the spool header line, then the raw message */
  content: Buffer;
}

/** What a segment holds: its messages not done, in order, and what could not be read. */
export interface SegmentContents {
  records: SegmentRecord[];
  /** bytes after the last whole record (a crash's cut-short append): ignored */
  torn: boolean;
  /**
   * bytes that are not a whole record with whole records after them: damage, not a crash (an
   * append is only ever cut short at the end). The records found past it are kept; a done
   * mark lost in it brings its message back.
   */
  damaged: boolean;
}

/** Reads a segment: the records not marked done (see parseSegment). */
export async function readSegment(path: string): Promise<SegmentContents> {
  return parseSegment(await readFile(path));
}

type Parsed =
  | { kind: 'D'; id: string; end: number }
  | { kind: 'M'; id: string; offset: number; content: Buffer; end: number };

/** The whole record at `at`, or null. */
function parseAt(bytes: Buffer, at: number, salt: string): Parsed | null {
  const eol = bytes.indexOf(0x0a, at);
  if (eol < 0 || eol - at > 200) return null;
  const frame = bytes.toString('latin1', at, eol).split(' ');
  if (!ID.test(frame[1] ?? '')) return null;
  if (frame[0] === 'D' && frame.length === 2) {
    return { kind: 'D', id: frame[1]!, end: eol + 1 };
  }
  if (frame[0] !== 'M' || frame.length !== 4) return null;
  const length = Number(frame[2]);
  const end = eol + 1 + length;
  if (!Number.isSafeInteger(length) || length < 0 || end > bytes.length) {
    return null;
  }
  const content = bytes.subarray(eol + 1, end);
  if (checksum(salt, frame[1]!, [content]) !== frame[3]) return null;
  return { kind: 'M', id: frame[1]!, offset: eol + 1, content, end };
}

/**
 * Where the next whole message record after `from` begins (at the start of a line), or -1.
 * Only a message's frame is trusted there: its checksum cannot match by chance, while a line of
 * a message's body may well read `D <something>`.
 */
function nextRecord(bytes: Buffer, from: number, salt: string): number {
  for (
    let p = bytes.indexOf('\nM ', from);
    p >= 0;
    p = bytes.indexOf('\nM ', p + 1)
  ) {
    if (parseAt(bytes, p + 1, salt)?.kind === 'M') return p + 1;
  }
  return -1;
}

/**
 * The records of a segment's bytes not marked done. What is not a whole record ends the
 * segment when nothing whole follows it (a torn tail); otherwise it is damage, skipped to the
 * next whole message record.
 */
export function parseSegment(bytes: Buffer): SegmentContents {
  const found = new Map<string, { offset: number; content: Buffer }>();
  const head = HEAD.exec(bytes.toString('latin1', 0, 64));
  if (!head) {
    // a first line cut short is a segment none of whose appends was made durable; more than
    // that without a readable head is damage, kept (docs/spool-internals.md, "Journal format")
    const empty = bytes.length <= HEAD_BYTES;
    return { records: [], torn: empty && bytes.length > 0, damaged: !empty };
  }
  const salt = head[1]!;
  let torn = false;
  let damaged = false;
  for (let at = head[0].length; at < bytes.length;) {
    const record = parseAt(bytes, at, salt);
    if (record?.kind === 'D') found.delete(record.id);
    else if (record) {
      found.set(record.id, { offset: record.offset, content: record.content });
    }
    if (record) {
      at = record.end;
      continue;
    }
    const next = nextRecord(bytes, at, salt);
    if (next < 0) {
      torn = true;
      break;
    }
    damaged = true;
    at = next;
  }
  return {
    records: [...found].map(([id, record]) => ({ id, ...record })),
    torn,
    damaged,
  };
}
