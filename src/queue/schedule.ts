// When each entry of queue/ is due: the due map and its heap, the holds, and the scan of queue/.
import type { Metrics } from '../observability/metrics.js';
import type { Spool } from '../spool/spool.js';
import { DueHeap } from './due-heap.js';
import type { IntakeBuffer } from './intake-buffer.js';

/** How often the dead/ gauge is recounted from the folder. */
const DEAD_RECOUNT_MS = 60_000;

export interface ScheduleDeps {
  spool: Spool;
  metrics: Metrics;
  now: () => number;
}

/**
 * Due times live in memory (a heap), loaded from the spool at start and refreshed by every
 * scan, so that `queue retry`, `replay`, `purge` and `inject` from another process are seen.
 */
export class Schedule {
  private readonly due = new Map<string, number>();
  private readonly heap = new DueHeap();
  /** not-before times of entries handed back after an attempt that could not be filed */
  private readonly holds = new Map<string, number>();
  private deadCountedAt = -Infinity;
  /**
   * When each entry of queue/ was accepted, for the oldest-waiting gauge: read with its due time,
   * or handed in by add(); one this process never read is taken as accepted when first seen.
   */
  private readonly created = new Map<string, number>();

  constructor(private readonly deps: ScheduleDeps) {}

  /** Schedules `id` at `at`; an earlier time pushed for it goes stale. */
  add(id: string, at: number, createdAt?: number): void {
    if (createdAt !== undefined) this.created.set(id, createdAt);
    this.due.set(id, at);
    this.heap.push(at, id);
  }

  /** `id` is not due before `at`: the next scan schedules it, not before this. */
  hold(id: string, at: number): void {
    this.holds.set(id, at);
  }

  /**
   * The earliest valid heap entry (stale ones dropped) whose attempt is not running, its time
   * capped at `horizon`. A running one's entry stays: its attempt may have just filed it back
   * (ResultFiler.file adds it before the attempt leaves `running`), and a scan would not read
   * it again (its due time is known), so dropping it lost the retry until the next start.
   */
  next(
    horizon: number,
    running: ReadonlyMap<string, unknown>,
  ): { id: string; at: number } | undefined {
    const passed: Array<[number, string]> = [];
    let found: { id: string; at: number } | undefined;
    for (let top = this.heap.peek(); top; top = this.heap.peek()) {
      const [at, id] = top;
      if (this.due.get(id) !== at) {
        this.heap.pop();
        continue;
      }
      if (!running.has(id)) {
        found = { id, at: Math.min(at, horizon) };
        break;
      }
      // at most one per attempt running (api.concurrency), put back below
      passed.push(top);
      this.heap.pop();
    }
    for (const [at, id] of passed) this.heap.push(at, id);
    return found;
  }

  /** Takes the entry `next` gave off the schedule, to attempt it now (its heap entry goes stale). */
  take(id: string): void {
    this.due.delete(id);
    this.holds.delete(id);
  }

  /**
   * Reloads due times from queue/ and forgets entries that left it (purged, replayed...); sets
   * the spool gauges on the way. Neither the attempts `running` nor this process's fresh
   * messages (glossary: src/spool/fresh.ts) are scheduled from what it finds.
   */
  async scan(
    running: ReadonlyMap<string, unknown>,
    fresh: Pick<IntakeBuffer, 'isFresh' | 'waiting'>,
  ): Promise<void> {
    const ids = await this.deps.spool.ids('queue');
    const gauge = this.deps.metrics.spool;
    gauge.set({ state: 'queue' }, ids.length + fresh.waiting);
    gauge.set({ state: 'active' }, running.size);
    // dead/ only grows through this process (counted as it files) and shrinks by an operator's
    // replay or purge: a recount now and then keeps the gauge close without listing it per scan
    if (this.deps.now() - this.deadCountedAt >= DEAD_RECOUNT_MS) {
      this.deadCountedAt = this.deps.now();
      gauge.set({ state: 'dead' }, (await this.deps.spool.ids('dead')).length);
    }
    const present = new Set(ids);
    for (const id of this.due.keys()) {
      if (!present.has(id) && !running.has(id)) this.due.delete(id);
    }
    for (const id of this.holds.keys()) {
      if (!present.has(id)) this.holds.delete(id);
    }
    for (const id of this.created.keys()) {
      if (!present.has(id)) this.created.delete(id);
    }
    // Only new entries (accepted by another worker, injected, replayed) and signalled ones
    // (`queue retry`) are read: a known entry's due time changes only through this process, so
    // a queue of 100,000 waiting messages costs one readdir per scan, not 100,000 reads.
    const signalled = new Set(await this.deps.spool.takeSignals());
    for (const id of ids) {
      // a fresh message whose parking did not finish is this process's to finish
      // (IntakeBuffer.park), not an entry to claim from queue/
      if (running.has(id) || fresh.isFresh(id)) continue;
      if (this.due.has(id) && !signalled.has(id)) continue;
      const entry = await this.deps.spool.read('queue', id);
      if (!entry) continue;
      const at = Math.max(entry.nextAttemptAt, this.holds.get(id) ?? -Infinity);
      this.created.set(id, entry.createdAt);
      if (this.due.get(id) !== at) this.add(id, at);
    }
    this.setOldest(ids);
  }

  /** Sets the oldest-waiting gauge from the entries of queue/ (those not running). */
  private setOldest(ids: readonly string[]): void {
    const now = this.deps.now();
    let oldest = now;
    for (const id of ids) {
      let createdAt = this.created.get(id);
      if (createdAt === undefined) this.created.set(id, (createdAt = now));
      if (createdAt < oldest) oldest = createdAt;
    }
    this.deps.metrics.oldestWaitingSeconds.set(
      Math.max(0, now - oldest) / 1000,
    );
  }
}
