// Small durable-write helpers: fsync a file's data and the directory entry that names it.
//
// The hot path of the spool opens, closes and renames with synchronous calls: on a local file
// system each is a few microseconds of metadata work, while the same call through libuv's
// thread pool costs two thread wake-ups (there and back), dearer than the call itself on a
// virtual machine. What waits for the disk (a write with O_DSYNC, an fsync) stays in the pool.
import {
  closeSync,
  fsync as fsyncCb,
  openSync,
  write as writeCb,
  writeSync,
  writev as writevCb,
} from 'node:fs';
import { access, open, rename, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';

const fsyncFd = promisify(fsyncCb);
const writeFd = promisify(writeCb);
const writevFd = promisify(writevCb);

/** What writeFully writes through: a FileHandle, or a plain descriptor (fdWriter). */
export type Writer = Pick<FileHandle, 'writev' | 'write'>;

/** A Writer for a file descriptor opened with openSync: the writes themselves stay async. */
export function fdWriter(fd: number): Writer {
  return {
    writev: (buffers: readonly NodeJS.ArrayBufferView[], position?: number) =>
      writevFd(fd, buffers, position),
    write: ((
      buffer: Buffer,
      offset: number,
      length: number,
      position: number | null,
    ) => writeFd(fd, buffer, offset, length, position)) as Writer['write'],
  } as Writer;
}

interface Round {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function newRound(): Round {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Group commit for directory fsyncs: callers that arrive while an fsync of the same folder runs
 * share the next one (it starts after their renames, so it covers them). Under load one fsync
 * serves many messages instead of one each.
 */
export class DirSyncer {
  private readonly folders = new Map<
    string,
    { running: boolean; next: Round | null }
  >();

  /** Resolves once an fsync of `dir` that started after this call has completed. */
  sync(dir: string): Promise<void> {
    let folder = this.folders.get(dir);
    if (!folder) {
      folder = { running: false, next: null };
      this.folders.set(dir, folder);
    }
    folder.next ??= newRound();
    const { promise } = folder.next;
    if (!folder.running) void this.run(dir, folder);
    return promise;
  }

  private async run(
    dir: string,
    folder: { running: boolean; next: Round | null },
  ): Promise<void> {
    folder.running = true;
    while (folder.next) {
      const round = folder.next;
      folder.next = null;
      try {
        // opened for each round: a folder replaced since the last one is the one synced
        const fd = openSync(dir, 'r');
        try {
          await fsyncFd(fd);
        } finally {
          closeSync(fd);
        }
        round.resolve();
      } catch (err) {
        round.reject(err);
      }
    }
    folder.running = false;
  }
}

/** Writes `data` to `tmpPath` (exclusive), fsyncs it, then renames it to `path` atomically. */
export async function writeFileAtomic(
  tmpPath: string,
  path: string,
  data: string,
): Promise<void> {
  await writeFileDurable(tmpPath, data);
  await rename(tmpPath, path);
}

/** Writes `data` to a new file (exclusive) and fsyncs it. */
export async function writeFileDurable(
  path: string,
  data: string,
): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Whether a path exists (any error, such as a missing folder, counts as no). */
export function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * Writes every byte of `buffers` at `position` (null: where the file stands, or at its end when
 * opened for appending). A write may take only part of them without an error, when a disk fills
 * up or a file size limit is reached: the rest is written again, and the write that cannot go
 * on throws (ENOSPC, EFBIG) instead of a file cut short being taken for whole.
 */
export async function writeFully(
  handle: Writer,
  buffers: Buffer[],
  position: number | null = null,
): Promise<void> {
  const total = buffers.reduce((sum, b) => sum + b.length, 0);
  let done = (await handle.writev(buffers, position ?? undefined)).bytesWritten;
  while (done < total) {
    // rare: the rest, in one piece
    const rest = Buffer.concat(buffers).subarray(done);
    const { bytesWritten } = await handle.write(
      rest,
      0,
      rest.length,
      position === null ? null : position + done,
    );
    if (bytesWritten === 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

/**
 * writeFully for a page-cache write that need not wait for the disk (an append without fsync):
 * synchronous, so no thread-pool round trip. A partial write goes on; one that cannot throws.
 */
export function writeFullySync(fd: number, data: Buffer): void {
  for (let done = 0; done < data.length;) {
    const written = writeSync(fd, data, done, data.length - done);
    if (written === 0) throw new Error('write made no progress');
    done += written;
  }
}
