// The journal of fresh small messages: one process's accepted messages, appended to segment
// files in its claim folder and made durable together, one fdatasync for all the appends of
// the moment. A message needs no file, rename or folder fsync of its own: at hundreds of
// messages a second those cost more CPU than parsing and posting it. The bytes on disk:
// journal-format.ts; why a segment is only ever appended to: docs/spool-internals.md.
import {
  closeSync,
  constants,
  fdatasync,
  ftruncateSync,
  openSync,
  readSync,
  unlinkSync,
} from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  DirSyncer,
  GroupCommit,
  PRIVATE_FILE,
  writeFullySync,
} from '../lib/durable-fs.js';
import {
  checksum,
  doneLine,
  frameLine,
  headLine,
  ID,
  newSalt,
  segmentName,
} from './journal-format.js';

// the format's reading, for the importers that knew it here
export {
  isSegmentName,
  parseSegment,
  readSegment,
  segmentsOf,
  type SegmentContents,
  type SegmentRecord,
} from './journal-format.js';

const fdatasyncFd = promisify(fdatasync);

/** A segment takes appends until it holds this many bytes; then a new one is started. */
export const SEGMENT_BYTES = 8 * 1024 * 1024;

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
  /** keys the records' checksums (journal-format.ts) */
  salt: string;
  /** ends in bytes a failed write left and a cut could not remove: no more marks go after them */
  garbage: boolean;
  /**
   * The first fdatasync error: every later sync of the segment fails with it. Linux reports a
   * failed write-back once per file, so a later fdatasync would succeed over pages it lost.
   */
  failed?: unknown;
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
  /** deletions of done segments under way, by path (deleted() waits for them) */
  private readonly deleting = new Map<string, Promise<void>>();
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
    const frame = frameLine(id, length, sum);
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

  /**
   * Whether a segment file is one of this journal's (being written, with messages left, or
   * being deleted: nothing else is to read it meanwhile).
   */
  owns(path: string): boolean {
    return this.segments.has(path) || this.deleting.has(path);
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
   * for (docs/spool-internals.md, "Journal durability"). A segment with nothing left is deleted.
   * Never throws.
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
    // written even when the segment goes now: it is deleted in libuv's pool, and a crash before
    // the deletion is over must find the record done, not deliver it again
    if (segment.fd >= 0 && !segment.garbage) this.writeDone(segment, id);
    if (segment.live === 0 && segment.sealed) this.drop(segment);
  }

  /** Appends a record's done line; a failed write seals the segment (see seal()). */
  private writeDone(segment: Segment, id: string): void {
    const start = segment.size;
    const line = doneLine(id);
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
      const path = join(this.dir, segmentName(Date.now(), ++this.counter));
      let fd: number;
      try {
        fd = openSync(
          path,
          // read too: a message whose bytes were not kept is read back for its attempt
          constants.O_RDWR |
            constants.O_APPEND |
            constants.O_CREAT |
            constants.O_EXCL,
          PRIVATE_FILE,
        );
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      const salt = newSalt();
      const head = headLine(salt);
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

  /** Resolves once the segments dropped so far are deleted (or found gone, or left). */
  async deleted(): Promise<void> {
    await Promise.all(this.deleting.values());
  }

  /**
   * Deletes a segment whose messages are all done (a deletion lost in a crash is harmless), in
   * libuv's pool: deleting 8 MiB that were synced took the main thread about 3 ms.
   */
  private drop(segment: Segment): void {
    if (this.deleting.has(segment.path)) return;
    this.segments.delete(segment.path);
    this.flushes.forget(segment.path);
    closeFd(segment);
    const { path } = segment;
    const deletion = unlink(path)
      // already gone; or left for the next start, which finds every record in it done
      .catch(() => undefined)
      .then(() => void this.deleting.delete(path));
    this.deleting.set(path, deletion);
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
