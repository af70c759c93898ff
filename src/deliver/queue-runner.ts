// The delivery workers: claim due messages from the spool, attempt them, and file the result.
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { errorFields } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { DedupeStore } from '../spool/dedupe-store.js';
import type { QueueEntry } from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';
import {
  attemptDelivery,
  type AttemptDeps,
  type AttemptResult,
} from './attempt-delivery.js';
import { DueHeap } from './due-heap.js';
import type { PayloadSink } from '../api/payload-sink.js';

export interface QueueRunnerDeps {
  config: Config;
  spool: Spool;
  dedupe: DedupeStore;
  sink: PayloadSink;
  log: Logger;
  metrics: Metrics;
  now?: () => number;
  random?: () => number;
  /** told when delivery pauses (with the reason) or resumes (null) */
  onPauseChange?: (reason: string | null) => void;
}

/** How often the dead/ gauge is recounted from the folder. */
const DEAD_RECOUNT_MS = 60_000;

/** Fresh messages kept waiting in memory (in the claim folder on disk); beyond, they are parked. */
const READY_LIMIT = 10_000;
/** Fresh messages parked at once when a pause starts. */
const PARK_AT_ONCE = 8;

/** Raw bytes of small fresh messages kept for their first attempt, at most this much in all. */
const READY_RAW_BYTES = 16 * 1024 * 1024;

/**
 * Flow control starts when more fresh messages than this wait for their first attempt (or 4 per
 * attempt allowed at once, if that is more): enough to keep every attempt slot busy.
 */
const FLOW_BACKLOG_MIN = 100;

/** A fresh message waiting for its first attempt, with its bytes when they were kept. */
interface Ready {
  entry: QueueEntry;
  raw?: Buffer;
}

/** Delivery is paused while the API refuses our credentials or URL (401/403/404). */
interface Pause {
  until: number;
  delay: number;
  reason: string;
}

/**
 * Runs up to `api.concurrency` attempts at once. Due times live in memory (a heap), loaded from
 * the spool at start and refreshed every `delivery.scanIntervalMs`, so that `queue retry`,
 * `replay`, `purge` and `inject` from another process are seen.
 */
export class QueueRunner {
  private readonly due = new Map<string, number>();
  private readonly heap = new DueHeap();
  private readonly running = new Map<string, Promise<void>>();
  /** not-before times of entries handed back after an attempt that could not be filed */
  private readonly holds = new Map<string, number>();
  /** fresh messages (one file in our claim folder) waiting for their first attempt */
  private readonly ready: Ready[] = [];
  private readyRawBytes = 0;
  /** fresh messages this process holds, waiting or in an attempt, by id */
  private readonly fresh = new Map<string, QueueEntry>();
  /** take the next attempt from `ready` (else from the due heap): the two take turns */
  private freshTurn = true;
  private deadCountedAt = -Infinity;
  /** fresh messages whose move to queue/ failed, tried again at every scan */
  private readonly unparked = new Map<
    string,
    { entry: QueueEntry; at: number }
  >();
  /** flow control: transactions waiting for room (see waitForRoom), oldest first */
  private readonly roomWaiters = new Set<() => void>();
  private readonly flowBacklog: number;
  private readonly attemptDeps: AttemptDeps;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private scanTimer?: NodeJS.Timeout;
  private closing = false;
  private scanning: Promise<void> | undefined;
  /** hybrid attempts that outlived their sender's wait, filed when they end (fileLate) */
  private readonly late = new Set<Promise<void>>();
  private pause: Pause | null = null;
  private closed?: Promise<void>;

  constructor(private readonly deps: QueueRunnerDeps) {
    this.now = deps.now ?? Date.now;
    this.flowBacklog = Math.max(
      FLOW_BACKLOG_MIN,
      4 * deps.config.api.concurrency,
    );
    this.attemptDeps = {
      config: deps.config,
      sink: deps.sink,
      dedupe: deps.dedupe,
      now: this.now,
      random: deps.random ?? Math.random,
      attachmentDir: deps.spool.tmpDir,
    };
  }

  /** Why delivery is not running, for /readyz; null when it is. */
  get pausedReason(): string | null {
    return this.pause?.reason ?? null;
  }

  /** Loads the spool (already mended by the caller) and starts delivering. */
  async start(): Promise<void> {
    await this.scan();
    const interval = this.deps.config.delivery.scanIntervalMs;
    this.scanTimer = setInterval(() => {
      this.scan().catch(err =>
        this.deps.log.error('spool scan failed', errorFields(err)),
      );
    }, interval);
    this.scanTimer.unref();
    this.pump();
  }

  /**
   * Flow control, as Postfix's in_flow_delay: while more accepted messages wait for their first
   * attempt than delivery can start at once, a new transaction waits (before its MAIL FROM is
   * answered) until delivery has caught up, or `maxMs` at most, and then goes on. Mail is slowed
   * to the pace it leaves at, never refused: a sender that keeps up with delivery is not kept
   * waiting, and the work of a backlog held in memory is not spent. Undefined when there is
   * room (or `maxMs` is 0); otherwise resolves once the transaction may go on.
   */
  waitForRoom(maxMs: number): Promise<void> | undefined {
    if (maxMs <= 0 || this.closing || this.ready.length <= this.flowBacklog) {
      return undefined;
    }
    return new Promise(resolve => {
      const done = () => {
        clearTimeout(timer);
        this.roomWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, maxMs);
      this.roomWaiters.add(done);
    });
  }

  /** Fresh messages accepted and waiting for their first attempt. */
  get waitingFirstAttempt(): number {
    return this.ready.length;
  }

  /** Lets the waiting transactions go on once the backlog is down to the flow limit. */
  private makeRoom(): void {
    if (this.roomWaiters.size === 0) return;
    if (this.ready.length > this.flowBacklog && !this.closing) return;
    for (const done of this.roomWaiters) done();
  }

  /** Schedules an entry of queue/ at its due time (scans do this for entries they find). */
  enqueue(entry: Pick<QueueEntry, 'id' | 'nextAttemptAt'>): void {
    if (this.closing) return;
    this.schedule(entry.id, entry.nextAttemptAt);
    this.pump();
  }

  /**
   * A fresh message just committed to our claim folder (Spool.commitFresh): delivered from
   * memory's queue without a claim or a read of its state, from `raw` when its bytes are given.
   * While delivery is paused, or when too many wait, it is parked in queue/ instead.
   */
  acceptFresh(entry: QueueEntry, raw?: Buffer): void {
    // when closing it stays in the claim folder: recovery parks it at the next start
    if (this.closing) return;
    this.fresh.set(entry.id, entry);
    if (this.pause || this.ready.length >= READY_LIMIT) {
      void this.parkFresh(entry, entry.nextAttemptAt);
      return;
    }
    const keep = raw && this.readyRawBytes + raw.length <= READY_RAW_BYTES;
    if (keep) this.readyRawBytes += raw.length;
    this.ready.push({ entry, raw: keep ? raw : undefined });
    this.pump();
  }

  /**
   * Registers a fresh message whose first attempt the caller makes itself (hybrid mode, with
   * `attemptClaimed` and `file`).
   */
  holdFresh(entry: QueueEntry): void {
    this.fresh.set(entry.id, entry);
  }

  /** Removes a fresh message the caller held (hybrid mode: refused while the sender waited). */
  async discardFresh(id: string): Promise<void> {
    await this.deps.spool.removeFresh(id);
    this.fresh.delete(id);
  }

  /**
   * Attempts a message the caller holds claimed: fresh (holdFresh) or in active/. Resolves with
   * the result before it is filed; call `file(result)` to file it.
   */
  attemptClaimed(entry: QueueEntry, raw?: Buffer): Promise<AttemptResult> {
    const spool = this.deps.spool;
    // a journaled message's entry says where in its segment it lies (rawLength)
    const path = !this.fresh.has(entry.id)
      ? spool.messagePath(entry.id)
      : entry.rawLength !== undefined
        ? spool.freshRawPath(entry.id)
        : spool.freshPath(entry.id);
    return attemptDelivery(entry, path, this.attemptDeps, raw);
  }

  /**
   * Files the result of an attempt whose caller stopped waiting for it (hybrid mode, past
   * `delivery.syncTimeoutMs`) once it ends; close() and settled() wait for it like any attempt
   * in flight. A filing that fails goes to `onError`.
   */
  fileLate(
    attempt: Promise<AttemptResult>,
    onError: (err: unknown) => Promise<unknown>,
  ): void {
    // the handling of a failed filing (a release) is waited for too
    const tracked = attempt
      .then(result => this.file(result))
      .catch(onError)
      .then(
        () => undefined,
        () => undefined,
      );
    this.late.add(tracked);
    void tracked.then(() => this.late.delete(tracked));
  }

  /** Files an attempt's result in the spool: removed, back in the queue, or dead. */
  async file(result: AttemptResult): Promise<void> {
    const { entry, outcome } = result;
    // no child logger: one per message costs more than the line it writes
    const log = this.deps.log;
    const fields = {
      queueId: entry.id,
      messageId: result.messageId ?? entry.messageId,
      attempts: entry.attempts,
      routes: entry.routes.length,
    };
    this.deps.metrics.deliveries.inc({ outcome });
    // a pause starting parks the fresh messages waiting: done before this one's outcome line
    await this.notePause(result);
    const spool = this.deps.spool;
    const fresh = this.fresh.has(entry.id);
    if (outcome === 'delivered') {
      if (fresh) await spool.removeFresh(entry.id);
      else await spool.remove(entry.id, 'active');
      this.fresh.delete(entry.id);
      log.info('message delivered', { ...fields, outcome });
    } else if (outcome === 'dead') {
      if (fresh) await spool.park(entry, 'dead');
      else await spool.move(entry, 'active', 'dead');
      this.fresh.delete(entry.id);
      this.deps.metrics.spool.inc({ state: 'dead' });
      log.warn('message dead', {
        ...fields,
        outcome,
        reason: entry.dead?.reason,
      });
    } else {
      if (fresh) await spool.park(entry, 'queue');
      else await spool.move(entry, 'active', 'queue');
      this.fresh.delete(entry.id);
      this.schedule(entry.id, entry.nextAttemptAt);
      log.warn('delivery deferred', {
        ...fields,
        outcome,
        error: entry.lastError,
        nextAttemptAt: new Date(entry.nextAttemptAt).toISOString(),
      });
    }
  }

  /**
   * Hands a claimed entry back to queue/ after an attempt that could not be filed (a spool or
   * dedupe I/O error), to be tried again after a retry delay rather than wait in active/ for
   * the next start. The state on disk is the one from before that attempt. Call it once the
   * attempt is over; the next scan schedules the entry.
   */
  async release(id: string): Promise<void> {
    const retry = this.deps.config.delivery.retry;
    const delay = Math.min(retry.initialDelayMs, retry.maxDelayMs);
    const fresh = this.fresh.get(id);
    if (fresh) {
      // parked due after the delay, or its newer state on the claim released to queue/
      await this.parkFresh(fresh, this.now() + delay);
      return;
    }
    try {
      if (!(await this.deps.spool.release(id))) return;
    } catch (err) {
      this.deps.log.error('could not hand a message back to the queue', {
        queueId: id,
        ...errorFields(err),
      });
      return;
    }
    // the next scan schedules it, not before this
    this.holds.set(id, this.now() + delay);
  }

  /**
   * Hands a fresh message over to queue/, due at `at`: parked with its state as accepted, or,
   * when an earlier parking got as far as writing a newer state on the claim, with that one.
   * When that fails (a disk error) it is tried again at every scan until it works: a message
   * that was answered 250 never waits unseen in this process's claim folder.
   */
  private async parkFresh(entry: QueueEntry, at: number): Promise<void> {
    let outcome: 'parked' | 'released';
    try {
      outcome = await this.deps.spool.releaseFresh(entry, at);
    } catch (err) {
      const first = !this.unparked.has(entry.id);
      this.unparked.set(entry.id, { entry, at });
      this.fresh.set(entry.id, entry);
      // logged once per message; the scans try again quietly
      if (first) {
        this.deps.log.error(
          'could not move a message to the queue; trying again at every scan',
          { queueId: entry.id, ...errorFields(err) },
        );
      }
      return;
    }
    if (this.unparked.delete(entry.id)) {
      this.deps.log.info('message moved to the queue after all', {
        queueId: entry.id,
      });
    }
    this.fresh.delete(entry.id);
    if (this.closing) return;
    // a state released as it was carries its own due time: the next scan reads it
    if (outcome === 'parked') this.schedule(entry.id, at);
    else this.holds.set(entry.id, at);
    this.pump();
  }

  /**
   * Waits up to `ms` for the attempts in flight (late hybrid ones included) to end and be
   * filed: at close(), and again once the sink is closed, which ends the ones close() gave up
   * on at once (a filing cut off by the process's exit would leave an outcome unrecorded).
   */
  async settled(ms: number): Promise<void> {
    if (this.running.size === 0 && this.late.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running.values(), ...this.late]),
      new Promise<void>(done => (timer = setTimeout(done, ms))),
    ]);
    clearTimeout(timer);
  }

  /** Stops claiming; waits up to delivery.shutdownTimeoutMs for attempts in flight. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      this.makeRoom();
      clearTimeout(this.timer);
      clearInterval(this.scanTimer);
      await this.settled(this.deps.config.delivery.shutdownTimeoutMs);
      if (this.ready.length > 0) {
        this.deps.log.info(
          'stopped with fresh messages waiting; they are delivered after the next start',
          { waiting: this.ready.length },
        );
      }
      if (this.running.size > 0) {
        this.deps.log.warn(
          'stopped with deliveries in flight; they are retried at the next start',
          {
            inFlight: this.running.size,
          },
        );
      }
    })();
    return this.closed;
  }

  private schedule(id: string, at: number): void {
    this.due.set(id, at);
    this.heap.push(at, id);
  }

  /**
   * Reloads due times from queue/ and forgets entries that left it (purged, replayed...). A
   * scan asked for while one runs (a slow disk) is that one: two would park the same message.
   */
  private scan(): Promise<void> {
    this.scanning ??= this.scanOnce().finally(
      () => (this.scanning = undefined),
    );
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    for (const { entry, at } of [...this.unparked.values()]) {
      await this.parkFresh(entry, at);
    }
    const ids = await this.deps.spool.ids('queue');
    const gauge = this.deps.metrics.spool;
    gauge.set({ state: 'queue' }, ids.length + this.ready.length);
    gauge.set({ state: 'active' }, this.running.size);
    // dead/ only grows through this process (counted as it files) and shrinks by an operator's
    // replay or purge: a recount now and then keeps the gauge close without listing it per scan
    if (this.now() - this.deadCountedAt >= DEAD_RECOUNT_MS) {
      this.deadCountedAt = this.now();
      gauge.set({ state: 'dead' }, (await this.deps.spool.ids('dead')).length);
    }
    const present = new Set(ids);
    for (const id of this.due.keys()) {
      if (!present.has(id) && !this.running.has(id)) this.due.delete(id);
    }
    for (const id of this.holds.keys()) {
      if (!present.has(id)) this.holds.delete(id);
    }
    // Only new entries (accepted by another worker, injected, replayed) and signalled ones
    // (`queue retry`) are read: a known entry's due time changes only through this process, so
    // a queue of 100,000 waiting messages costs one readdir per scan, not 100,000 reads.
    const signalled = new Set(await this.deps.spool.takeSignals());
    for (const id of ids) {
      // a fresh message whose parking did not finish is this process's to finish (parkFresh),
      // not an entry to claim from queue/
      if (this.running.has(id) || this.fresh.has(id)) continue;
      if (this.due.has(id) && !signalled.has(id)) continue;
      const entry = await this.deps.spool.read('queue', id);
      if (!entry) continue;
      const at = Math.max(entry.nextAttemptAt, this.holds.get(id) ?? -Infinity);
      if (this.due.get(id) !== at) this.schedule(id, at);
    }
    this.pump();
  }

  /** Starts attempts while there is room and something due; otherwise sets the timer. */
  private pump(): void {
    if (this.closing) return;
    clearTimeout(this.timer);
    const limit = this.deps.config.api.concurrency;
    while (this.running.size < limit) {
      const now = this.now();
      if (this.pause) {
        // one probe at a time, when the pause is over, with whichever message is next
        if (this.running.size > 0) return;
        if (now < this.pause.until) return this.wake(this.pause.until - now);
      }
      const next = this.nextDue(this.pause ? now : Infinity);
      const dueNow = next !== undefined && next.at <= now;
      if (this.ready.length > 0 && !this.pause && (this.freshTurn || !dueNow)) {
        this.freshTurn = false;
        this.startFresh(this.ready.shift()!);
        this.makeRoom();
        continue;
      }
      this.freshTurn = true;
      if (!next) return;
      if (next.at > now) return this.wake(next.at - now);
      this.heap.pop();
      this.due.delete(next.id);
      this.holds.delete(next.id);
      const run = this.process(next.id, this.pause !== null).finally(() => {
        this.running.delete(next.id);
        this.pump();
      });
      this.running.set(next.id, run);
    }
  }

  /** Starts the first attempt of a fresh message: no claim, no read of its state. */
  private startFresh({ entry, raw }: Ready): void {
    if (raw) this.readyRawBytes -= raw.length;
    const run = (async () => {
      try {
        await this.file(await this.attemptClaimed(entry, raw));
      } catch (err) {
        this.deps.log.error('delivery attempt failed', {
          queueId: entry.id,
          ...errorFields(err),
        });
        await this.release(entry.id);
      }
    })().finally(() => {
      this.running.delete(entry.id);
      this.pump();
    });
    this.running.set(entry.id, run);
  }

  /** The earliest valid heap entry (stale ones dropped), its time capped at `horizon`. */
  private nextDue(horizon: number): { id: string; at: number } | undefined {
    for (let top = this.heap.peek(); top; top = this.heap.peek()) {
      const [at, id] = top;
      if (this.due.get(id) === at && !this.running.has(id)) {
        return { id, at: Math.min(at, horizon) };
      }
      this.heap.pop();
    }
    return undefined;
  }

  private wake(ms: number): void {
    const delay = Math.min(
      Math.max(ms, 0),
      this.deps.config.delivery.scanIntervalMs,
    );
    this.timer = setTimeout(() => this.pump(), delay);
    this.timer.unref();
  }

  /** Claims and attempts one entry; `probe` attempts it even before its time (paused delivery). */
  private async process(id: string, probe: boolean): Promise<void> {
    try {
      const entry = await this.deps.spool.claim(id);
      if (!entry) return; // taken by a `queue` command, or purged
      if (!probe && entry.nextAttemptAt > this.now()) {
        // another worker of the cluster rescheduled it since we learnt its time: not yet
        await this.deps.spool.release(id);
        this.schedule(id, entry.nextAttemptAt);
        this.deps.log.debug('not due yet: rescheduled elsewhere', {
          queueId: id,
          nextAttemptAt: new Date(entry.nextAttemptAt).toISOString(),
        });
        return;
      }
      await this.file(await this.attemptClaimed(entry));
    } catch (err) {
      // a spool or dedupe I/O error: back to the queue, tried again after a retry delay
      this.deps.log.error('delivery attempt failed', {
        queueId: id,
        ...errorFields(err),
      });
      await this.release(id);
    }
  }

  /** Starts or ends a pause; resolves once the fresh messages a new pause parks are parked. */
  private async notePause(result: AttemptResult): Promise<void> {
    const retry = this.deps.config.delivery.retry;
    if (result.configError) {
      const delay = this.pause
        ? Math.min(this.pause.delay * retry.multiplier, retry.maxDelayMs)
        : Math.min(retry.initialDelayMs, retry.maxDelayMs);
      const starting = !this.pause;
      if (starting) {
        this.deps.log.error(
          'delivery paused: the API refused our credentials or URL; check api.url and api.token',
          { error: result.entry.lastError, probeInMs: delay },
        );
      }
      this.pause = {
        until: this.now() + delay,
        delay,
        reason: `delivery paused: ${result.entry.lastError ?? 'API configuration error'}`,
      };
      this.deps.metrics.paused.set(1);
      if (starting) {
        // they would wait out the pause in the claim folder: park them where all can see them
        const waiting = this.ready.splice(0);
        for (const { raw } of waiting) {
          if (raw) this.readyRawBytes -= raw.length;
        }
        this.makeRoom();
        this.deps.onPauseChange?.(this.pause.reason);
        // a few at a time: each one reads its record and writes and fsyncs two files.
        // parkFresh never rejects: a parking that fails is retried at every scan
        await Promise.all(
          Array.from({ length: PARK_AT_ONCE }, async () => {
            // when closing, the rest stays where it is: the next start parks it
            for (
              let next = waiting.shift();
              next && !this.closing;
              next = waiting.shift()
            ) {
              await this.parkFresh(next.entry, next.entry.nextAttemptAt);
            }
          }),
        );
      }
    } else if (this.pause) {
      this.pause = null;
      this.deps.metrics.paused.set(0);
      this.deps.log.info('delivery resumed');
      this.deps.onPauseChange?.(null);
    }
  }
}
