// Delivered (Message-ID, mailbox) pairs, one small file each, kept for the dedupe window.
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A record per delivered pair: the file's mtime is the delivery time. It survives restarts, and
 * prune() bounds it to what the window needs. Writes are not fsynced: losing one in a power cut
 * costs at most one duplicate post, which the contract allows.
 */
export class DedupeStore {
  /** bucket folders known to exist */
  private readonly buckets = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The record key of a normalised Message-ID and a mailbox (or route) key. */
  static key(messageId: string, mailbox: string): string {
    return createHash('sha256')
      .update(`${messageId}\n${mailbox}`)
      .digest('hex');
  }

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), key);
  }

  /** True when the pair was delivered within the window. */
  async has(key: string): Promise<boolean> {
    if (this.windowMs <= 0) return false;
    try {
      const info = await stat(this.path(key));
      return this.now() - info.mtimeMs < this.windowMs;
    } catch {
      return false;
    }
  }

  /** Records a delivery now: one open and one close (the bucket folder made once). */
  async add(key: string): Promise<void> {
    if (this.windowMs <= 0) return;
    const path = this.path(key);
    const bucket = key.slice(0, 2);
    if (!this.buckets.has(bucket)) {
      await mkdir(join(this.dir, bucket), { recursive: true });
      this.buckets.add(bucket);
    }
    try {
      // 'w' creates or truncates: either way the file's mtime becomes now
      await (await open(path, 'w')).close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // its bucket was removed under us
      await mkdir(join(this.dir, bucket), { recursive: true });
      await (await open(path, 'w')).close();
    }
    // a clock of our own (tests) is not the file system's: the record carries its time
    if (this.now !== Date.now) {
      const seconds = this.now() / 1000;
      await utimes(path, seconds, seconds);
    }
  }

  /** Removes records older than the window; returns how many. */
  async prune(): Promise<number> {
    let removed = 0;
    let buckets: string[];
    try {
      buckets = await readdir(this.dir);
    } catch {
      return 0;
    }
    for (const bucket of buckets) {
      const dir = join(this.dir, bucket);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const info = await stat(join(dir, name)).catch(() => null);
        if (info && this.now() - info.mtimeMs >= this.windowMs) {
          await rm(join(dir, name), { force: true });
          removed++;
        }
      }
    }
    return removed;
  }
}
