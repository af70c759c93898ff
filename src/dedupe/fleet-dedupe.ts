// Dedupe records shared by a fleet: the local records first (always written, the fallback), then
// the fleet's Redis, where every record expires with the same window as the local ones.
import { randomUUID } from 'node:crypto';
import type { SharedState } from '../state/shared-state.js';
import type { Claim, DedupeRecords } from './dedupe-records.js';

/**
 * Local records written while Redis was unreachable, kept to be pushed when it returns. Past
 * this many (and a tenth) the oldest are dropped: those stay local only (a resend of one reaching another
 * instance may be posted again: a duplicate, never a loss).
 */
const MAX_BACKLOG = 200_000;
/** Records pushed per round trip when Redis returns. */
const PUSH_CHUNK = 500;

/** Deletes a key only while it still holds this process's claim (never a delivery record). */
const RELEASE_SCRIPT =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

export interface FleetDedupeOptions {
  /** how long a delivered record lasts (delivery.dedupeWindowMs) */
  windowMs: number;
  /**
   * How long a claim holds a key while its POST runs: past it (an instance that died while
   * posting) another instance may post the message.
   */
  claimMs: number;
  now?: () => number;
}

/**
 * The same record keys as locally, in Redis as `<prefix>dedupe:<key>`: `d:<ms>` once delivered
 * (expiring after the window), `c:<owner>` while one instance posts it (expiring after
 * `claimMs`). The local records are consulted first and written first: Redis only ever adds
 * what other instances know, and its absence changes nothing but that.
 */
export class FleetDedupe implements DedupeRecords {
  /** this process's claims: `c:` and a value no other process has */
  private readonly owner = `c:${randomUUID()}`;
  /** [key, time] of deliveries Redis did not take, oldest first */
  private backlog: Array<[string, number]> = [];
  private readonly now: () => number;

  constructor(
    private readonly local: DedupeRecords,
    private readonly shared: SharedState,
    private readonly options: FleetDedupeOptions,
  ) {
    this.now = options.now ?? Date.now;
    shared.onReturn(() => this.catchUp());
  }

  /** Records waiting for Redis to return (for /status and tests). */
  get waiting(): number {
    return this.backlog.length;
  }

  async claim(key: string): Promise<Claim> {
    if ((await this.local.claim(key)) === 'duplicate') return 'duplicate';
    // SET NX GET: the key is ours if it was free, else its value says whose it is
    const earlier = await this.shared.run('dedupe', redis =>
      redis.call(
        'SET',
        this.redisKey(key),
        this.owner,
        'PX',
        String(this.options.claimMs),
        'NX',
        'GET',
      ),
    );
    if (typeof earlier !== 'string') return 'new';
    return earlier.startsWith('d:') ? 'duplicate' : 'busy';
  }

  async add(key: string): Promise<void> {
    await this.local.add(key);
    const time = this.now();
    const done = await this.shared.run('dedupe', redis =>
      redis.set(this.redisKey(key), `d:${time}`, 'PX', this.options.windowMs),
    );
    if (done === undefined) this.keep(key, time);
  }

  async release(key: string): Promise<void> {
    await this.local.release(key);
    await this.shared.run('dedupe', redis =>
      redis.eval(RELEASE_SCRIPT, 1, this.redisKey(key), this.owner),
    );
  }

  prune(): Promise<number> {
    return this.local.prune();
  }

  close(): Promise<void> {
    return this.local.close();
  }

  private redisKey(key: string): string {
    return this.shared.key('dedupe', key);
  }

  private keep(key: string, time: number): void {
    this.backlog.push([key, time]);
    // trimmed a tenth at a time: a splice per record would move 200,000 entries each time
    if (this.backlog.length > MAX_BACKLOG * 1.1) {
      this.backlog.splice(0, this.backlog.length - MAX_BACKLOG);
    }
  }

  /**
   * Pushes the deliveries recorded while Redis was away, each expiring when it would have;
   * what a failed chunk held waits for the next return.
   */
  private async catchUp(): Promise<void> {
    while (this.backlog.length > 0) {
      const chunk = this.backlog.splice(0, PUSH_CHUNK);
      const now = this.now();
      const live = chunk.filter(
        ([, time]) => now - time < this.options.windowMs,
      );
      const pushed = await this.shared.run('dedupe', redis => {
        const pipeline = redis.pipeline();
        for (const [key, time] of live) {
          const left = this.options.windowMs - (now - time);
          pipeline.set(this.redisKey(key), `d:${time}`, 'PX', left);
        }
        return pipeline.exec();
      });
      if (pushed === undefined) {
        this.backlog.unshift(...live);
        return;
      }
    }
  }
}
