// Streams the DATA of one message to a file, counting bytes; never holds more than a small
// message in memory.
import {
  closeSync,
  constants,
  createWriteStream,
  openSync,
  type WriteStream,
} from 'node:fs';
import { unlink } from 'node:fs/promises';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { fdWriter, PRIVATE_FILE, writeFully } from '../lib/durable-fs.js';
import { BodyDigest, fingerprint } from '../mail/fingerprint.js';
import { StructureCheck, type StructureFault } from '../mail/structure.js';
import {
  headerBlock,
  HEADER_SNIFF_BYTES,
  messageIdOf,
} from '../spool/spool-file.js';

export interface ReceivedFile {
  /** the file written (none when `stored` is false) */
  path: string;
  /**
   * false when nothing was written: a small message kept in `raw` for the caller to store
   * (`keepSmall`), or one over the limit
   */
  stored: boolean;
  /** bytes received, the excess included (the header line not counted) */
  size: number;
  /** true when the message went over the limit: the file is incomplete and must not be used */
  oversized: boolean;
  /**
   * the limit of its MIME structure the message went over (mail/structure.ts), or null: such a
   * message is not stored either, and must be refused
   */
  malformed: StructureFault | null;
  /** the raw Message-ID header value (unfolded), if the header block has one */
  messageId: string | null;
  /**
   * the From address and body digest that dedupe records match on (mail/fingerprint.ts); ''
   * for an oversized message
   */
  fingerprint: string;
  /** bytes written in front of the message (the header line given), 0 without one */
  offset: number;
  /**
   * The message's bytes, when it was small enough to be written in one piece: the caller may
   * parse these instead of reading the file back. Absent for larger messages.
   */
  raw?: Buffer;
}

/** The SMTP data stream: smtp-server flips `sizeExceeded` once the SIZE limit is passed. */
type DataStream = Readable & { sizeExceeded?: boolean };

/**
 * Messages up to this size are gathered and written with one write (with O_DSYNC when durable,
 * so no separate fsync); larger ones stream to the file as they come.
 */
export const SMALL_MESSAGE_BYTES = 128 * 1024;

/** A new file, written through to the disk on each write (no separate fsync needed). */
const DURABLE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC;

/**
 * Writes `header` (if any) then the stream to `path` (created exclusively; on disk before it
 * resolves when `durable`). Past the size limit, or once the MIME structure goes over a limit
 * (mail/structure.ts), the rest is read and dropped, so the client gets its 552 or 554 without
 * the excess being buffered. On a stream or disk error the partial file is removed and the error
 * rethrown.
 */
export async function receiveToFile(
  stream: DataStream,
  path: string,
  options: {
    durable?: boolean;
    header?: Buffer;
    /**
     * A small message (up to SMALL_MESSAGE_BYTES) is not written at all: it is returned in
     * `raw` for the caller to store (Spool.journalFresh), and `header` is not used for it.
     */
    keepSmall?: boolean;
  } = {},
): Promise<ReceivedFile> {
  const offset = options.header?.length ?? 0;
  let size = 0;
  let oversized = false;
  const head: Buffer[] = [];
  /** the message so far, while it is small enough to be written in one piece */
  let small: Buffer[] = [];
  let file: WriteStream | undefined;
  let fileError: Error | undefined;
  let created = false;
  const body = new BodyDigest();
  const structure = new StructureCheck();
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (size < HEADER_SNIFF_BYTES) head.push(chunk);
      size += chunk.length;
      if (fileError) throw fileError;
      if (stream.sizeExceeded) oversized = true;
      if (!oversized && !structure.fault) {
        body.update(chunk);
        structure.update(chunk);
      }
      if (oversized || structure.fault) {
        // the rest is read and dropped; what was written is of no use
        small = [];
        continue;
      }
      if (!file) {
        small.push(chunk);
        if (size <= SMALL_MESSAGE_BYTES) continue;
        // too large to gather: from here on it streams to the file
        file = createWriteStream(path, {
          flags: 'wx',
          mode: PRIVATE_FILE,
          flush: options.durable,
        });
        // only a file this call created is removed on failure (not one that was there)
        file.once('open', () => (created = true));
        file.on('error', (err: Error) => (fileError ??= err));
        if (options.header) file.write(options.header);
        for (const piece of small.splice(0)) file.write(piece);
      } else if (!file.write(chunk)) {
        await once(file, 'drain');
      }
    }
    const malformed = oversized ? null : structure.end();
    let raw: Buffer | undefined;
    let stored = true;
    let kept = false;
    if (oversized || malformed) {
      await discard(file, path, () => created);
      stored = false;
    } else if (file) {
      file.end();
      await finished(file);
    } else {
      raw = small.length === 1 ? small[0]! : Buffer.concat(small, size);
      if (options.keepSmall) {
        stored = false;
        kept = true;
      } else {
        const buffers = options.header ? [options.header, raw] : [raw];
        await writeSmall(path, buffers, options.durable ?? false);
      }
    }
    // a small message's bytes are gathered already: no second copy of its start
    const headers = headerBlock(
      raw ?? (head.length === 1 ? head[0]! : Buffer.concat(head)),
    );
    const messageId = messageIdOf(headers);
    return {
      path,
      stored,
      size,
      oversized,
      malformed,
      messageId,
      // a refused message: its partial digest would mean nothing
      fingerprint:
        oversized || malformed
          ? ''
          : fingerprint(headers, body.digest(), messageId),
      offset: kept ? 0 : offset,
      raw,
    };
  } catch (err) {
    await discard(file, path, () => created);
    throw err;
  }
}

/**
 * Closes a file being streamed and removes it, if this call created it. The open may still be
 * pending: the unlink waits for the stream's close, or it could run before the file exists.
 */
async function discard(
  file: WriteStream | undefined,
  path: string,
  created: () => boolean,
): Promise<void> {
  if (!file) return;
  if (!file.closed) {
    const closed = once(file, 'close').catch(() => undefined);
    file.destroy();
    await closed;
  }
  if (created()) await unlink(path).catch(() => undefined);
}

/**
 * One open, one write (durable with O_DSYNC), one close. The open and close are synchronous
 * calls (see durable-fs.ts): only the write waits for the disk.
 */
async function writeSmall(
  path: string,
  buffers: Buffer[],
  durable: boolean,
): Promise<void> {
  // an existing file fails the exclusive open and is left alone
  const fd = openSync(path, durable ? DURABLE_FLAGS : 'wx', PRIVATE_FILE);
  let written = false;
  try {
    await writeFully(fdWriter(fd), buffers, 0);
    written = true;
  } finally {
    closeSync(fd);
    if (!written) await unlink(path).catch(() => undefined);
  }
}
