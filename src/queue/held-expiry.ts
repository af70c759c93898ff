// held/'s retention: held messages older than delivery.heldRetentionMs deleted at the runner's
// scans, each with its log line and a count.
import { errorFields, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { QueueEntry } from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';

export interface HeldExpiryDeps {
  spool: Spool;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** delivery.heldRetentionMs: how long a held message is kept, from its `held.at` */
  retentionMs: number;
}

/** When a held entry was held (ms since the epoch): `held.at`, else when it was accepted. */
export function heldSince(entry: QueueEntry): number {
  const at = entry.held ? Date.parse(entry.held.at) : NaN;
  return Number.isNaN(at) ? entry.createdAt : at;
}

/**
 * Deletes held messages once `retentionMs` has passed since they were held. Every sweep lists
 * held/ (one readdir); an entry's state is read once, when first seen, and again only when it
 * falls due. In a cluster every worker sweeps: the deletion starts with a rename out of held/
 * (Spool.take), which one process wins; the others find nothing and go on.
 */
export class HeldExpiry {
  /** when each entry of held/ seen so far expires */
  private readonly expiresAt = new Map<string, number>();

  constructor(private readonly deps: HeldExpiryDeps) {}

  /** One pass over held/: sets the held gauge, deletes what has expired. */
  async sweep(): Promise<void> {
    const { spool, metrics } = this.deps;
    const ids = await spool.ids('held');
    metrics.spool.set({ state: 'held' }, ids.length);
    const present = new Set(ids);
    for (const id of this.expiresAt.keys()) {
      if (!present.has(id)) this.expiresAt.delete(id);
    }
    for (const id of ids) {
      let at = this.expiresAt.get(id);
      if (at === undefined) {
        const entry = await spool.read('held', id);
        if (!entry) continue; // replayed, purged or expired by another process meanwhile
        at = heldSince(entry) + this.deps.retentionMs;
        this.expiresAt.set(id, at);
      }
      if (at > this.deps.now()) continue;
      try {
        await this.expire(id);
      } catch (err) {
        // tried again at the next sweep
        this.deps.log.error('could not delete an expired held message', {
          queueId: id,
          ...errorFields(err),
        });
      }
    }
  }

  /** Deletes one held message whose time is up, unless it was held again meanwhile. */
  private async expire(id: string): Promise<void> {
    const { spool, log, metrics } = this.deps;
    // ours alone from here: a replay, purge or another worker's sweep finds it gone
    const entry = await spool.take(id, 'held');
    this.expiresAt.delete(id);
    if (!entry) return;
    const heldAt = heldSince(entry);
    if (heldAt + this.deps.retentionMs > this.deps.now()) {
      // replayed and held again since it was first read: kept, with its new time
      await spool.move(entry, null, 'held');
      return;
    }
    // a `queue replay` writes its new state (in queue/) before it drops the held one: the raw
    // file is that state's now (the replay checks the raw file is still there after its move)
    if (await spool.read('queue', id)) return;
    await spool.remove(id, null);
    metrics.heldExpired.inc();
    metrics.spool.dec({ state: 'held' });
    log.info('held message expired', {
      queueId: id,
      messageId: entry.messageId,
      reason: entry.held?.reason,
      heldAt: new Date(heldAt).toISOString(),
    });
  }
}
