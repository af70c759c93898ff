// The journal of fresh small messages: one process's accepted messages, appended to segment
// files in its claim folder and made durable together, one fdatasync for all the appends of
// the moment. A message needs no file, rename or folder fsync of its own: at hundreds of
// messages a second those cost more CPU than parsing and posting it.
//
// A segment is a line naming its salt, then a run of records, each a frame line and, for a
// message, its bytes:
//
//   J1 <salt>\n                     (32 random hex digits, drawn when the segment is created)
//   M <id> <length> <checksum>\n<length bytes: the spool header line, then the raw message>
//   D <id>\n                        (the message is out of the journal: delivered, or parked)
//
// The checksum (SHA-1 of the segment's salt, the id and the bytes, base64url) tells a whole
// record from one a crash cut short or the disk damaged. The salt keeps a record written into a
// message's body (by a sender, or a journal file mailed on) from ever passing for one of the
// segment's own when its reading has to skip unreadable bytes. A segment is only ever appended
// to, and a failed append is cut off, so bytes that are not a whole record with nothing whole
// after them are a torn tail (never mail that was answered 250); with whole records after them
// they are damage, read past (parseSegment). A segment whose every message is done is deleted;
// the messages of the segments a process leaves behind are parked in queue/ by the next one
// (Spool.requeueClaims).
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fdatasync,
  ftruncateSync,
  openSync,
  readSync,
  unlinkSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DirSyncer, GroupCommit, writeFullySync } from './durable-fs.js';

const fdatasyncFd = promisify(fdatasync);

/** A segment takes appends until it holds this many bytes; then a new one is started. */
export const SEGMENT_BYTES = 8 * 1024 * 1024;

const SEGMENT_NAME = /^journal-[0-9a-z]+-\d+\.log$/;

/** A queue id as the journal takes it: letters and digits (newQueueId), nothing a path reads. */
const ID = /^[0-9A-Za-z]{1,64}$/;

/** A segment's first line: its format and salt. */
const HEAD = /^J1 ([0-9a-f]{32})\n/;
const HEAD_BYTES = 'J1 \n'.length + 32;

/** Whether a file name of a claim folder is a journal segment. */
export function isSegmentName(name: string): boolean {
  return SEGMENT_NAME.test(name);
}

/** Where a record's bytes (the header line and the raw message) lie. */
export interface JournalPosition {
  path: string;
  /** byte offset of the record's bytes in the segment */
  offset: number;
  length: number;
}

interface Segment {
  path: string;
  fd: number;
  /** bytes written (whole records only) */
  size: number;
  /** records not yet done, appends still waiting for the disk included */
  live: number;
  /** no more appends: full, or a write to it failed */
  sealed: boolean;
  /** appends waiting for the disk: the file stays open for them even once the journal closes */
  waiting: number;
  /** the folder fsync that makes the segment's name durable (started when it was created) */
  named: Promise<void>;
  /** keys the records' checksums (see the top of this file) */
  salt: string;
  /** ends in bytes a failed write left and a cut could not remove: no more marks go after them */
  garbage: boolean;
  /**
   * The first fdatasync error: every later sync of the segment fails with it. Linux reports a
   * failed write-back once per file, so a later fdatasync would succeed over pages it lost.
   */
  failed?: unknown;
}

/** The checksum of a record (its segment's salt, id and bytes), as its frame line carries it. */
function checksum(
  salt: string,
  id: string,
  content: readonly Buffer[],
): string {
  const hash = createHash('sha1').update(salt).update(id);
  for (const piece of content) hash.update(piece);
  return hash.digest('base64url');
}

/**
 * The journal of one claim folder, owned by the one process that accepts into it. Appends are
 * synchronous page-cache writes; their durability is one fdatasync per segment shared by every
 * append waiting (GroupCommit).
 */
export class Journal {
  private current: Segment | undefined;
  private readonly records = new Map<
    string,
    { segment: Segment; offset: number; length: number }
  >();
  private readonly segments = new Map<string, Segment>();
  private readonly flushes = new GroupCommit(path => this.flush(path));
  private readonly dirSyncer = new DirSyncer();
  private counter = 0;
  private closed = false;

  /**
   * @param dir - the claim folder the segments are written in
   * @param datasync - makes a segment's appends durable (a test can make it fail)
   */
  constructor(
    readonly dir: string,
    private readonly datasync: (fd: number) => Promise<void> = fdatasyncFd,
  ) {}

  /**
   * Appends a message's record and resolves once it is on disk. On any failure the record is
   * not there to be recovered as accepted (cut off the segment, or marked done), and the error
   * is rethrown: the sender hears 451.
   */
  async append(id: string, content: Buffer[]): Promise<JournalPosition> {
    if (this.closed) throw new Error('journal closed');
    if (!ID.test(id)) throw new Error(`not a queue id: ${JSON.stringify(id)}`);
    const length = content.reduce((sum, b) => sum + b.length, 0);
    const segment = this.writable();
    const sum = checksum(segment.salt, id, content);
    const frame = Buffer.from(`M ${id} ${length} ${sum}\n`);
    const start = segment.size;
    try {
      writeFullySync(segment.fd, [frame, ...content]);
    } catch (err) {
      this.cut(segment, start);
      throw err;
    }
    segment.size += frame.length + length;
    segment.live++;
    const offset = start + frame.length;
    this.records.set(id, { segment, offset, length });
    if (segment.size >= SEGMENT_BYTES) this.seal(segment);
    segment.waiting++;
    try {
      await segment.named;
      await this.flushes.sync(segment.path);
    } catch (err) {
      // whole in the page cache but not known to be on disk: never accepted, so marked done
      // (best effort), and nothing more goes into a segment the disk failed for
      this.seal(segment);
      this.mark(id);
      throw err;
    } finally {
      segment.waiting--;
      if (this.closed && segment.waiting === 0) closeFd(segment);
    }
    return { path: segment.path, offset, length };
  }

  /** Where a message's record lies, if it is in the journal (and not done). */
  position(id: string): JournalPosition | undefined {
    const record = this.records.get(id);
    return (
      record && {
        path: record.segment.path,
        offset: record.offset,
        length: record.length,
      }
    );
  }

  /** Whether a segment file is one of this journal's (being written, or with messages left). */
  owns(path: string): boolean {
    return this.segments.has(path);
  }

  /** Whether a message is in the journal and not done. */
  has(id: string): boolean {
    return this.records.has(id);
  }

  /** Messages in the journal, not done. */
  get size(): number {
    return this.records.size;
  }

  /** Reads a message's record (the header line and the raw message). */
  read(id: string): Buffer | undefined {
    const record = this.records.get(id);
    if (!record) return undefined;
    if (this.closed) throw new Error('journal closed');
    const bytes = Buffer.allocUnsafe(record.length);
    let done = 0;
    while (done < record.length) {
      const n = readSync(
        record.segment.fd,
        bytes,
        done,
        record.length - done,
        record.offset + done,
      );
      if (n === 0) throw new Error(`journal record of ${id} cut short`);
      done += n;
    }
    return bytes;
  }

  /**
   * Marks a message done (delivered, or parked elsewhere durably): a plain append, not waited
   * for (a crash before it reaches the disk brings the message back: at most a duplicate, which
   * the dedupe record usually stops). A segment with nothing left is deleted. Never throws: a
   * mark that cannot be written leaves the message to come back only if the segment outlives
   * this process.
   */
  done(id: string): void {
    if (!this.closed) this.mark(id);
  }

  /** done(), also for an append that failed after the journal closed. */
  private mark(id: string): void {
    const record = this.records.get(id);
    if (!record) return;
    this.records.delete(id);
    const { segment } = record;
    segment.live--;
    if (segment.live === 0 && segment.sealed) {
      this.drop(segment);
      return;
    }
    if (segment.fd < 0 || segment.garbage) return;
    const start = segment.size;
    const line = Buffer.from(`D ${id}\n`);
    try {
      writeFullySync(segment.fd, line);
      segment.size += line.length;
    } catch {
      // a full disk: the record stays live on disk, so the segment takes nothing more and is
      // deleted once its other messages are done (a deletion needs no space), taking it along
      this.cut(segment, start);
      this.seal(segment);
    }
  }

  /**
   * Closes the segments' files; what is not done stays on disk for the next process of this
   * claim folder to park. The journal still knows its messages (has), but takes no append, read
   * or mark: an attempt that ends after the close can neither mistake a message for one of
   * its own file nor drop it.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const segment of this.segments.values()) {
      // an append waiting for the disk finishes first (and closes it)
      if (segment.waiting === 0) closeFd(segment);
    }
    this.current = undefined;
  }

  /** The segment appends go to: the current one, or a new one. */
  private writable(): Segment {
    if (this.current && !this.current.sealed) return this.current;
    for (;;) {
      const path = join(
        this.dir,
        `journal-${Date.now().toString(36)}-${++this.counter}.log`,
      );
      let fd: number;
      try {
        fd = openSync(
          path,
          // read too: a message whose bytes were not kept is read back for its attempt
          constants.O_RDWR |
            constants.O_APPEND |
            constants.O_CREAT |
            constants.O_EXCL,
        );
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      const salt = randomBytes(16).toString('hex');
      const head = Buffer.from(`J1 ${salt}\n`);
      try {
        writeFullySync(fd, head);
      } catch (err) {
        closeSync(fd);
        try {
          unlinkSync(path);
        } catch {
          // an empty or cut-short head is no segment: the next start deletes it
        }
        throw err;
      }
      const named = this.dirSyncer.sync(this.dir);
      // awaited by every append; a failure is theirs to report, not an unhandled rejection
      named.catch(() => undefined);
      const segment: Segment = {
        path,
        fd,
        size: head.length,
        live: 0,
        sealed: false,
        waiting: 0,
        named,
        salt,
        garbage: false,
      };
      this.segments.set(path, segment);
      this.current = segment;
      return segment;
    }
  }

  /** Cuts a failed append off the end of a segment; a segment that cannot be cut is sealed. */
  private cut(segment: Segment, size: number): void {
    try {
      ftruncateSync(segment.fd, size);
    } catch {
      segment.garbage = true;
      this.seal(segment);
    }
  }

  /** No more appends to `segment`; deleted at once when nothing in it is left. */
  private seal(segment: Segment): void {
    if (segment.sealed) return;
    segment.sealed = true;
    if (this.current === segment) this.current = undefined;
    if (segment.live === 0) this.drop(segment);
  }

  /** Deletes a segment whose messages are all done (a deletion lost in a crash is harmless). */
  private drop(segment: Segment): void {
    this.segments.delete(segment.path);
    this.flushes.forget(segment.path);
    closeFd(segment);
    try {
      unlinkSync(segment.path);
    } catch {
      // already gone; or left for the next start, which finds every record in it done
    }
  }

  private async flush(path: string): Promise<void> {
    const segment = this.segments.get(path);
    if (!segment) return;
    if (segment.failed !== undefined) throw segment.failed;
    try {
      await this.datasync(segment.fd);
    } catch (err) {
      // set before any waiting append hears of it: the next round, already queued, fails too
      segment.failed = err;
      this.seal(segment);
      throw err;
    }
  }
}

/** Closes a segment's file, once. */
function closeFd(segment: Segment): void {
  if (segment.fd < 0) return;
  try {
    closeSync(segment.fd);
  } catch {
    // nothing to do about a close that fails
  }
  segment.fd = -1;
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
    // no more than a first line cut short: created by a process that stopped before any of
    // its appends was made durable (the first fdatasync covers the line), so nothing in it
    // was answered 250. More than that without a readable first line is damage: its records
    // cannot be checked without the salt, and the segment is kept for the operator
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

/** The segments of a claim folder among its file names, as paths. */
export function segmentsOf(dir: string, names: readonly string[]): string[] {
  return names.filter(isSegmentName).map(n => join(dir, n));
}
