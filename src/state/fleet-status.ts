// What each instance of a fleet holds, published in Redis with an expiry, and summed for /status.
import type { SharedState } from './shared-state.js';

/** How often an instance publishes its counts; a row lasts three times as long. */
const PUBLISH_INTERVAL_MS = 5000;

/** One instance's row: its spool counts as of `at`. */
export interface InstanceCounts {
  instance: string;
  at: string;
  counts: Record<string, number>;
}

/** The fleet as /status shows it: the sum, and a row per instance that published lately. */
export interface FleetCounts {
  total: Record<string, number>;
  instances: InstanceCounts[];
}

/**
 * `<prefix>instance:<id>` holds an instance's counts (JSON), expiring after three intervals;
 * `<prefix>instances` lists the ids, scored by when their rows expire, and expires itself when
 * nobody publishes. An instance that dies disappears from the view within 15 s.
 */
export class FleetStatus {
  private timer?: NodeJS.Timeout;
  private readonly ttlMs: number;

  constructor(
    private readonly shared: SharedState,
    /** this instance's name in the view: host and SMTP port */
    readonly instance: string,
    private readonly counts: () => Promise<Record<string, number>>,
    private readonly intervalMs = PUBLISH_INTERVAL_MS,
  ) {
    this.ttlMs = intervalMs * 3;
  }

  /** Publishes now (resolves once done) and every interval after, until close(). */
  async start(): Promise<void> {
    const tick = () => {
      void this.publish().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, this.intervalMs).unref();
    await this.publish();
  }

  /** Publishes this instance's counts once (a no-op while Redis is away). */
  async publish(): Promise<void> {
    const counts = await this.counts().catch(() => null);
    if (!counts) return;
    const row: InstanceCounts = {
      instance: this.instance,
      at: new Date().toISOString(),
      counts,
    };
    await this.shared.run('status', redis =>
      redis
        .pipeline()
        .set(this.rowKey(this.instance), JSON.stringify(row), 'PX', this.ttlMs)
        .zadd(this.listKey(), Date.now() + this.ttlMs, this.instance)
        .pexpire(this.listKey(), this.ttlMs)
        .exec(),
    );
  }

  /** The fleet's rows and their sum; undefined while Redis is away. */
  async read(): Promise<FleetCounts | undefined> {
    const rows = await this.shared.run('status', async redis => {
      await redis.zremrangebyscore(this.listKey(), '-inf', Date.now());
      const ids = await redis.zrange(this.listKey(), 0, -1);
      if (ids.length === 0) return [];
      return redis.mget(...ids.map(id => this.rowKey(id)));
    });
    if (rows === undefined) return undefined;
    const instances = rows
      .filter((row): row is string => row !== null)
      .map(row => JSON.parse(row) as InstanceCounts)
      .sort((a, b) => a.instance.localeCompare(b.instance));
    const total: Record<string, number> = {};
    for (const { counts } of instances) {
      for (const [state, count] of Object.entries(counts)) {
        total[state] = (total[state] ?? 0) + count;
      }
    }
    return { total, instances };
  }

  /** Stops publishing and takes this instance's row out of the view. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.shared.run('status', redis =>
      redis
        .pipeline()
        .del(this.rowKey(this.instance))
        .zrem(this.listKey(), this.instance)
        .exec(),
    );
  }

  private rowKey(id: string): string {
    return this.shared.key('instance', id);
  }

  private listKey(): string {
    return this.shared.key('instances');
  }
}
