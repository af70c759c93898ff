// The dedupe store's files: one append-only log per process, read back, appended to and compacted.
import {
  appendFile,
  open,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_FILE, privateDir, writeFullySync } from '../lib/durable-fs.js';

/** What the logs read back into: the store's records in memory. */
export interface LogRecords {
  /** the time of a key's last delivery as known in memory */
  get(key: string): number | undefined;
  /** takes in a record read back */
  remember(key: string, time: number): void;
  /** true when a record of `time` is within the window now */
  within(time: number): boolean;
}

interface Batch {
  lines: string[];
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function newBatch(): Batch {
  const { promise: done, resolve, reject } = Promise.withResolvers<void>();
  return { lines: [], done, resolve, reject };
}

/** A record line: `<ms since the epoch> <key>\n`. */
const LINE = /^(\d+) ([A-Za-z0-9_-]{16})$/;
/** how far ahead of this process's clock a record read back may be (see plausible()) */
const YEAR_MS = 365 * 24 * 3600 * 1000;

/**
 * The logs of one dedupe folder: one per process, `<time> <key>` per line, lines that arrive
 * together written at once. Every log is read at start, so records survive restarts. Writes
 * are not fsynced: losing the last ones in a power cut costs at most one duplicate post, which
 * the contract allows. compact() rewrites this process's log with its live records.
 */
export class DedupeLog {
  /** bytes of each log file already read */
  private readonly offsets = new Map<string, number>();
  private refreshing?: Promise<void>;
  private lastRefresh = -Infinity;
  private generation = 0;
  private log?: FileHandle;
  private next: Batch | null = null;
  private compacting: Batch | null = null;
  private writing = false;
  /** when this process last appended, by its clock */
  private lastWriteAt = -Infinity;

  constructor(
    private readonly dir: string,
    /** this process's log name (`<name>.<generation>.log`) */
    private readonly name: string,
    private readonly windowMs: number,
    private readonly now: () => number,
    private readonly records: LogRecords,
  ) {}

  /**
   * Reads every log once. A folder that cannot be read or made leaves the records in memory
   * alone: a failing lookup must not fail a delivery.
   */
  async load(): Promise<void> {
    try {
      await privateDir(this.dir);
    } catch {
      return;
    }
    // each on its own: an import that fails must not keep the logs from being read
    await this.importBuckets().catch(() => undefined);
    await this.refresh().catch(() => undefined);
    for (const file of this.offsets.keys()) {
      const generation = ownGeneration(file, this.name);
      if (generation !== null) {
        this.generation = Math.max(this.generation, generation);
      }
    }
  }

  /** When the logs were last read, by Date.now(). */
  get refreshedAt(): number {
    return this.lastRefresh;
  }

  /** Reads what every log gained since the last read; one read at a time. */
  refresh(): Promise<void> {
    this.refreshing ??= this.readLogs().finally(() => {
      this.refreshing = undefined;
      this.lastRefresh = Date.now();
    });
    return this.refreshing;
  }

  /** Queues a record; records queued while a write runs share the next write. */
  append(key: string, time: number): Promise<void> {
    this.next ??= newBatch();
    this.next.lines.push(`${time} ${key}\n`);
    const { done } = this.next;
    if (!this.writing) void this.run();
    return done;
  }

  /** Asks the writer to rewrite this process's log with the live records, between writes. */
  compact(): Promise<void> {
    this.compacting ??= newBatch();
    const { done } = this.compacting;
    if (!this.writing) void this.run();
    return done;
  }

  /**
   * Removes another process's log whose every record expired: a worker slot that no longer
   * runs, or one idle for a whole window (its writer then opens the log anew, see
   * reopenIfRemoved()).
   */
  async removeExpired(): Promise<void> {
    for (const file of await this.logFiles()) {
      if (ownGeneration(file, this.name) !== null) continue;
      const bytes = await readFrom(join(this.dir, file), 0);
      const live = bytes
        .toString('latin1')
        .split('\n')
        .some(line => {
          const match = LINE.exec(line);
          return match !== null && this.live(Number(match[1]));
        });
      if (!live) {
        await rm(join(this.dir, file), { force: true });
        this.offsets.delete(file);
      }
    }
  }

  /** Closes this process's log once the writes queued so far are done. */
  async close(): Promise<void> {
    await this.next?.done.catch(() => undefined);
    await this.log?.close();
    this.log = undefined;
  }

  /** A record time read back that still counts: plausible, and within the window. */
  private live(time: number): boolean {
    return this.plausible(time) && this.records.within(time);
  }

  /**
   * A time read back from a log or an imported record is taken only when it could be real. A
   * line torn by a power cut and completed by the next append reads as a time at least ten
   * times today's (centuries ahead), which would never expire nor be the oldest; a clock
   * stepped back by up to a year still reads its records.
   */
  private plausible(time: number): boolean {
    return Number.isSafeInteger(time) && time <= this.now() + YEAR_MS;
  }

  /**
   * Takes in the records of the earlier layout (one empty file per record, named by the hex
   * SHA-256, its mtime the delivery time, in 2-character bucket folders), then removes them.
   */
  private async importBuckets(): Promise<void> {
    const buckets = (await readdir(this.dir)).filter(n =>
      /^[0-9a-f]{2}$/.test(n),
    );
    if (buckets.length === 0) return;
    const lines: string[] = [];
    for (const bucket of buckets) {
      const folder = join(this.dir, bucket);
      for (const name of await readdir(folder).catch((): string[] => [])) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const info = await stat(join(folder, name)).catch(() => null);
        if (!info) continue;
        const time = Math.round(info.mtimeMs);
        if (!this.live(time)) continue;
        const key = Buffer.from(name, 'hex')
          .subarray(0, 12)
          .toString('base64url');
        this.records.remember(
          key,
          Math.max(time, this.records.get(key) ?? -Infinity),
        );
        lines.push(`${time} ${key}\n`);
      }
    }
    if (lines.length > 0) {
      // appended: an import cut short and run again keeps what the first one took in
      await appendFile(
        join(this.dir, `${this.name}.0.imported.log`),
        lines.join(''),
        { mode: PRIVATE_FILE },
      );
    }
    for (const bucket of buckets) {
      await rm(join(this.dir, bucket), { recursive: true, force: true });
    }
  }

  private async logFiles(): Promise<string[]> {
    const names = await readdir(this.dir).catch((): string[] => []);
    return names.filter(n => n.endsWith('.log'));
  }

  private async readLogs(): Promise<void> {
    const files = await this.logFiles();
    for (const known of [...this.offsets.keys()]) {
      if (!files.includes(known)) this.offsets.delete(known);
    }
    for (const file of files) {
      const from = this.offsets.get(file) ?? 0;
      const bytes = await readFrom(join(this.dir, file), from);
      // whole lines only: one being appended is read the next time
      const end = bytes.lastIndexOf(0x0a) + 1;
      if (end === 0) continue;
      for (const line of bytes
        .subarray(0, end)
        .toString('latin1')
        .split('\n')) {
        const match = LINE.exec(line);
        if (!match) continue;
        const time = Number(match[1]);
        const key = match[2]!;
        if (this.live(time) && time > (this.records.get(key) ?? -Infinity)) {
          this.records.remember(key, time);
        }
      }
      this.offsets.set(file, from + end);
    }
  }

  private logPath(generation = this.generation): string {
    return join(this.dir, `${this.name}.${generation}.log`);
  }

  /** The one writer of this process's log: appends and compactions, in turn. */
  private async run(): Promise<void> {
    this.writing = true;
    while (this.next || this.compacting) {
      const batch = this.next ?? this.compacting!;
      if (batch === this.next) this.next = null;
      else this.compacting = null;
      try {
        if (batch.lines.length > 0) {
          await this.reopenIfRemoved();
          this.log ??= await open(this.logPath(), 'a', PRIVATE_FILE);
          // an append to the page cache, not fsynced: synchronous (see durable-fs.ts)
          writeFullySync(this.log.fd, Buffer.from(batch.lines.join('')));
          this.lastWriteAt = this.now();
        } else {
          await this.rewrite();
        }
        batch.resolve();
      } catch (err) {
        batch.reject(err);
      }
    }
    this.writing = false;
  }

  /**
   * Another process's prune removes a log whose records all expired: after an idle spell of
   * half a window this process checks that its open log is still there, or opens it anew.
   */
  private async reopenIfRemoved(): Promise<void> {
    if (!this.log || this.now() - this.lastWriteAt < this.windowMs / 2) return;
    if ((await this.log.stat()).nlink > 0) return;
    await this.log.close();
    this.log = undefined;
  }

  /**
   * This process's live records into the next generation's log, its old logs removed after:
   * a crash in between leaves both, and reading both gives the same records.
   */
  private async rewrite(): Promise<void> {
    await this.log?.close();
    this.log = undefined;
    const own = (await this.logFiles()).filter(
      f => ownGeneration(f, this.name) !== null,
    );
    const lines: string[] = [];
    for (const file of own) {
      const bytes = await readFrom(join(this.dir, file), 0);
      for (const line of bytes.toString('latin1').split('\n')) {
        const match = LINE.exec(line);
        if (match && this.live(Number(match[1]))) lines.push(`${line}\n`);
      }
    }
    const next = this.logPath(this.generation + 1);
    await writeFile(`${next}.tmp`, lines.join(''), { mode: PRIVATE_FILE });
    await rename(`${next}.tmp`, next);
    this.generation++;
    for (const file of own) {
      await rm(join(this.dir, file), { force: true });
      this.offsets.delete(file);
    }
  }
}

/** The bytes of a file from `offset` to its end (none when it is gone). */
async function readFrom(path: string, offset: number): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const { size } = await handle.stat();
    if (size <= offset) return Buffer.alloc(0);
    const bytes = Buffer.alloc(size - offset);
    let read = 0;
    while (read < bytes.length) {
      const { bytesRead } = await handle.read(
        bytes,
        read,
        bytes.length - read,
        offset + read,
      );
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return bytes.subarray(0, read);
  } finally {
    await handle.close();
  }
}

/**
 * The generation of a log of process `name` (`<name>.<n>.log`, or `<name>.<n>.imported.log`
 * for records taken from the earlier layout), or null when the file is another process's.
 */
function ownGeneration(file: string, name: string): number | null {
  const match = /^(.*)\.(\d+)(?:\.imported)?\.log$/.exec(file);
  return match && match[1] === name ? Number(match[2]) : null;
}
