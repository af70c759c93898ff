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
  writevSync,
} from 'node:fs';
import {
  access,
  chmod,
  mkdir,
  open,
  rename,
  stat,
  type FileHandle,
} from 'node:fs/promises';
import { promisify } from 'node:util';

/**
 * The mode of every file the daemon writes under spool.dir: mail at rest is its owner's alone.
 * Given at each creation, so that it holds whatever the process umask (only a stricter umask
 * takes more away).
 */
export const PRIVATE_FILE = 0o600;

/** The mode of every folder the daemon makes under spool.dir, spool.dir included. */
export const PRIVATE_DIR = 0o700;

/**
 * Makes `dir` (and its missing parents) with PRIVATE_DIR, and tightens it when it exists with
 * a looser mode (a spool made before modes were set, or by hand). A folder it may not chmod
 * (another owner's) is left as it is.
 */
export async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  const { mode } = await stat(dir);
  if ((mode & 0o077) === 0) return;
  // group and others lose every right; the owner's stay as they are
  await chmod(dir, mode & 0o700).catch(() => undefined);
}

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
  return Promise.withResolvers<void>();
}

interface KeyState {
  running: boolean;
  next: Round | null;
  /** forgotten while a round ran: dropped once the rounds are over */
  forgotten: boolean;
}

/**
 * Group commit: callers that arrive while a flush of the same key runs share the next one (it
 * starts after their writes, so it covers them). Under load one flush serves many messages
 * instead of one each.
 */
export class GroupCommit {
  private readonly keys = new Map<string, KeyState>();

  /** @param flush - makes what was written under `key` durable (an fsync) */
  constructor(private readonly flush: (key: string) => Promise<void>) {}

  /** Resolves once a flush of `key` that started after this call has completed. */
  sync(key: string): Promise<void> {
    let state = this.keys.get(key);
    if (!state) {
      state = { running: false, next: null, forgotten: false };
      this.keys.set(key, state);
    }
    state.next ??= newRound();
    const { promise } = state.next;
    if (!state.running) void this.run(key, state);
    return promise;
  }

  /** Forgets a key that will not be flushed again (a deleted file), once its rounds are over. */
  forget(key: string): void {
    const state = this.keys.get(key);
    if (!state) return;
    if (state.running) state.forgotten = true;
    else if (!state.next) this.keys.delete(key);
  }

  private async run(key: string, state: KeyState): Promise<void> {
    state.running = true;
    while (state.next) {
      const round = state.next;
      state.next = null;
      try {
        await this.flush(key);
        round.resolve();
      } catch (err) {
        round.reject(err);
      }
    }
    state.running = false;
    if (state.forgotten) this.keys.delete(key);
  }
}

/** fsyncs a folder: its entries (a file created or renamed into it) are durable after. */
export async function fsyncDir(dir: string): Promise<void> {
  // opened for each call: a folder replaced since the last one is the one synced
  const fd = openSync(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncs a file's data (one written without O_DSYNC, to be kept). */
export async function fsyncFile(path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Group commit for directory fsyncs (see GroupCommit), keyed by the folder's path. */
export class DirSyncer extends GroupCommit {
  constructor() {
    super(fsyncDir);
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
  data: string | Buffer,
): Promise<void> {
  const handle = await open(path, 'wx', PRIVATE_FILE);
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
 * writeFully for a page-cache write that need not wait for the disk (an append, made durable
 * later or not at all): synchronous, so no thread-pool round trip. A partial write goes on;
 * one that cannot throws.
 */
export function writeFullySync(fd: number, data: Buffer | Buffer[]): void {
  const buffers = Array.isArray(data) ? data : [data];
  const total = buffers.reduce((sum, b) => sum + b.length, 0);
  let done = buffers.length === 1 ? 0 : writevSync(fd, buffers);
  while (done < total) {
    // a single buffer, or the rare rest of a partial writev, in one piece
    const rest =
      buffers.length === 1
        ? buffers[0]!.subarray(done)
        : Buffer.concat(buffers).subarray(done);
    const written = writeSync(fd, rest, 0, rest.length);
    if (written === 0) throw new Error('write made no progress');
    done += written;
  }
}
