// Dedupe records shared by a fleet: the local records first (always written, the fallback), then
// the fleet's Redis, where every record expires with the same window as the local ones.
import { randomUUID } from 'node:crypto';
import { RedisBatch } from '../state/redis-batch.js';
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
/** Claims asked ahead and not yet taken, at most (the oldest are given back past it). */
const MAX_AHEAD = 1000;

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
  /** the catch-up under way, if any */
  private catchingUp?: Promise<void>;
  private closing = false;
  private readonly now: () => number;
  /** fleet operations under way that no caller waits for (settled() does) */
  private readonly sending = new Set<Promise<void>>();
  /** claims, records and releases of one turn go as one pipeline */
  private readonly batch: RedisBatch;
  /** claims asked ahead (claimAhead) and not yet taken by claim(), oldest first */
  private readonly ahead = new Map<
    string,
    { at: number; reply: Promise<unknown> }
  >();

  constructor(
    private readonly local: DedupeRecords,
    private readonly shared: SharedState,
    private readonly options: FleetDedupeOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.batch = new RedisBatch(shared, 'dedupe');
    shared.onReturn(() => this.resume());
  }

  /** Records waiting for Redis to return (for /status and tests). */
  get waiting(): number {
    return this.backlog.length;
  }

  /**
   * Asks Redis for a key that claim() will be asked for soon (the next messages in line), so
   * that the round trip is not on the attempt's path. A claim asked ahead holds the key as
   * claim() would; one not taken within half the claim's time is given back.
   */
  claimAhead(key: string): void {
    if (this.ahead.has(key) || !this.shared.available) return;
    this.forgetStale();
    const reply = this.sendClaim(key);
    this.track(reply.then(() => undefined));
    this.ahead.set(key, { at: this.now(), reply });
  }

  async claim(key: string): Promise<Claim> {
    const ahead = this.ahead.get(key);
    this.ahead.delete(key);
    if ((await this.local.claim(key)) === 'duplicate') {
      if (ahead) await this.giveBack(key, ahead.reply);
      return 'duplicate';
    }
    let earlier: unknown;
    if (ahead && this.now() - ahead.at < this.options.claimMs / 2) {
      earlier = await ahead.reply;
    } else {
      // a claim asked too long ago may be close to expiring: asked again, afresh
      if (ahead) await this.giveBack(key, ahead.reply);
      earlier = await this.sendClaim(key);
    }
    if (typeof earlier !== 'string') return 'new';
    return earlier.startsWith('d:') ? 'duplicate' : 'busy';
  }

  /**
   * Resolves once the local record is written: the attempt goes on while the fleet's record
   * follows (the claim holds the key meanwhile). settled() waits for it.
   */
  async add(key: string): Promise<void> {
    await this.local.add(key);
    const time = this.now();
    const sent = this.batch
      .send([
        'SET',
        this.redisKey(key),
        `d:${time}`,
        'PX',
        this.options.windowMs,
      ])
      .then(done => {
        if (done === undefined) this.keep(key, time);
        // Redis takes writes again after refusing them (no outage, so no return to wait for)
        else if (this.backlog.length > 0) void this.resume();
      });
    this.track(sent);
  }

  /**
   * Waits for what this process sent the fleet on its own so far: records of deliveries
   * (written, or kept for Redis's return), claims asked ahead, claims given back, and the
   * catch-up of a return.
   */
  async settled(): Promise<void> {
    await Promise.all(this.sending);
  }

  async release(key: string): Promise<void> {
    await this.local.release(key);
    await this.releaseShared(key);
  }

  prune(): Promise<number> {
    return this.local.prune();
  }

  /** Gives back the claims asked ahead, waits for the records being written, then closes. */
  async close(): Promise<void> {
    // a catch-up under way stops after its chunk: the rest stays local
    this.closing = true;
    const ahead = [...this.ahead];
    this.ahead.clear();
    await Promise.all(
      ahead.map(([key, { reply }]) => this.giveBack(key, reply)),
    );
    await this.settled();
    await this.local.close();
  }

  private redisKey(key: string): string {
    return this.shared.key('dedupe', key);
  }

  /** SET NX GET: the key is ours if it was free (null), else its value says whose it is. */
  private sendClaim(key: string): Promise<unknown> {
    return this.batch.send([
      'SET',
      this.redisKey(key),
      this.owner,
      'PX',
      this.options.claimMs,
      'NX',
      'GET',
    ]);
  }

  private async releaseShared(key: string): Promise<void> {
    await this.batch.send([
      'EVAL',
      RELEASE_SCRIPT,
      1,
      this.redisKey(key),
      this.owner,
    ]);
  }

  private track(sent: Promise<void>): void {
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  /** Releases a claim asked ahead and not used, when it did take the key. */
  private async giveBack(key: string, reply: Promise<unknown>): Promise<void> {
    if ((await reply) === null) await this.releaseShared(key);
  }

  /** Gives back the claims asked ahead that are too old to be used, or too many. */
  private forgetStale(): void {
    const oldest = this.now() - this.options.claimMs / 2;
    for (const [key, { at, reply }] of this.ahead) {
      if (at >= oldest && this.ahead.size < MAX_AHEAD) return;
      this.ahead.delete(key);
      this.track(this.giveBack(key, reply));
    }
  }

  private keep(key: string, time: number): void {
    this.backlog.push([key, time]);
    // trimmed a tenth at a time: a splice per record would move 200,000 entries each time
    if (this.backlog.length > MAX_BACKLOG * 1.1) {
      this.backlog.splice(0, this.backlog.length - MAX_BACKLOG);
    }
  }

  /** Starts pushing the backlog, unless a catch-up is under way: settled() waits for it. */
  private resume(): Promise<void> {
    if (!this.catchingUp) {
      const caughtUp = this.catchUp().finally(
        () => (this.catchingUp = undefined),
      );
      this.catchingUp = caughtUp;
      this.track(caughtUp);
    }
    return this.catchingUp;
  }

  /**
   * Pushes the deliveries recorded while Redis was away or refusing, each expiring when it
   * would have; what a failed chunk held waits for the next return, or the next write Redis
   * takes.
   */
  private async catchUp(): Promise<void> {
    while (this.backlog.length > 0 && !this.closing) {
      const chunk = this.backlog.splice(0, PUSH_CHUNK);
      const now = this.now();
      const live = chunk.filter(
        ([, time]) => now - time < this.options.windowMs,
      );
      const pushed = await this.shared.run('dedupe', async redis => {
        const pipeline = redis.pipeline();
        for (const [key, time] of live) {
          const left = this.options.windowMs - (now - time);
          pipeline.set(this.redisKey(key), `d:${time}`, 'PX', left);
        }
        // exec() resolves even when its commands failed (the connection dropped midway, a
        // refusal): each reply carries its error, and such a chunk was not pushed
        const failed = (await pipeline.exec())?.find(([err]) => err);
        if (failed) throw failed[0];
        return true;
      });
      if (pushed === undefined) {
        this.backlog.unshift(...live);
        return;
      }
    }
  }
}
