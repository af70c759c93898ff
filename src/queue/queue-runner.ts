// The delivery workers' lifecycle and pump: start what is due, attempt it, file the result.
import type { Config } from '../config/schema.js';
import type { PayloadSink } from '../deliver/payload-sink.js';
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
import { ResultFiler } from './file-result.js';
import { IntakeBuffer, type Ready } from './intake-buffer.js';
import { DeliveryPause } from './pause.js';
import { Schedule } from './schedule.js';

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

/**
 * Runs up to `api.concurrency` attempts at once: the entries of queue/ as they fall due (see
 * Schedule, refreshed every `delivery.scanIntervalMs`) and this process's fresh messages (see
 * IntakeBuffer; "fresh": the glossary of src/spool/fresh.ts), taking turns.
 */
export class QueueRunner {
  private readonly running = new Map<string, Promise<void>>();
  /** take the next attempt from the ready list (else from the schedule): the two take turns */
  private freshTurn = true;
  private readonly schedule: Schedule;
  private readonly buffer: IntakeBuffer;
  private readonly pause: DeliveryPause;
  private readonly filer: ResultFiler;
  private readonly attemptDeps: AttemptDeps;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private scanTimer?: NodeJS.Timeout;
  private closing = false;
  private scanning: Promise<void> | undefined;
  /** hybrid attempts that outlived their sender's wait, filed when they end (fileLate) */
  private readonly late = new Set<Promise<void>>();
  private closed?: Promise<void>;

  constructor(private readonly deps: QueueRunnerDeps) {
    const { config, spool, log, metrics } = deps;
    const now = deps.now ?? Date.now;
    this.now = now;
    this.schedule = new Schedule({ spool, metrics, now });
    this.buffer = new IntakeBuffer({
      spool,
      log,
      concurrency: config.api.concurrency,
      onParked: (id, outcome, at) => {
        // a state released as it was carries its own due time: the next scan reads it
        if (outcome === 'parked') this.schedule.add(id, at);
        else this.schedule.hold(id, at);
        this.pump();
      },
    });
    const retry = config.delivery.retry;
    this.pause = new DeliveryPause({
      retry,
      log,
      metrics,
      now,
      onPauseChange: deps.onPauseChange,
    });
    this.filer = new ResultFiler({
      spool,
      log,
      metrics,
      retry,
      now,
      buffer: this.buffer,
      schedule: this.schedule,
      pause: this.pause,
    });
    this.attemptDeps = {
      config,
      sink: deps.sink,
      dedupe: deps.dedupe,
      now,
      random: deps.random ?? Math.random,
      attachmentDir: spool.tmpDir,
    };
  }

  /** Why delivery is not running, for /readyz; null when it is. */
  get pausedReason(): string | null {
    return this.pause.reason;
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

  /** Flow control before MAIL FROM is answered: see IntakeBuffer.waitForRoom. */
  waitForRoom(maxMs: number): Promise<void> | undefined {
    return this.buffer.waitForRoom(maxMs);
  }

  /** Fresh messages accepted and waiting for their first attempt. */
  get waitingFirstAttempt(): number {
    return this.buffer.waiting;
  }

  /** Schedules an entry of queue/ at its due time (scans do this for entries they find). */
  enqueue(entry: Pick<QueueEntry, 'id' | 'nextAttemptAt'>): void {
    if (this.closing) return;
    this.schedule.add(entry.id, entry.nextAttemptAt);
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
    this.buffer.hold(entry);
    if (this.pause.active || this.buffer.full) {
      void this.buffer.park(entry, entry.nextAttemptAt);
      return;
    }
    this.buffer.push(entry, raw);
    this.pump();
  }

  /**
   * Registers a fresh message whose first attempt the caller makes itself (hybrid mode, with
   * `attemptClaimed` and `file`).
   */
  holdFresh(entry: QueueEntry): void {
    this.buffer.hold(entry);
  }

  /** Removes a fresh message the caller held (hybrid mode: refused while the sender waited). */
  discardFresh(id: string): Promise<void> {
    return this.filer.discard(id);
  }

  /**
   * Attempts a message the caller holds claimed: fresh (holdFresh) or in active/. Resolves with
   * the result before it is filed; call `file(result)` to file it.
   */
  attemptClaimed(entry: QueueEntry, raw?: Buffer): Promise<AttemptResult> {
    const spool = this.deps.spool;
    // a journaled message's entry says where in its segment it lies (rawLength)
    const path = !this.buffer.isFresh(entry.id)
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

  /** Files an attempt's result in the spool: see ResultFiler.file. */
  file(result: AttemptResult): Promise<void> {
    return this.filer.file(result);
  }

  /** Hands a claimed entry back to queue/: see ResultFiler.release. */
  release(id: string): Promise<void> {
    return this.filer.release(id);
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
      this.buffer.close();
      clearTimeout(this.timer);
      clearInterval(this.scanTimer);
      await this.settled(this.deps.config.delivery.shutdownTimeoutMs);
      if (this.buffer.waiting > 0) {
        this.deps.log.info(
          'stopped with fresh messages waiting; they are delivered after the next start',
          { waiting: this.buffer.waiting },
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

  /**
   * Retries the parkings that failed, then reloads due times from queue/. A scan asked for
   * while one runs (a slow disk) is that one: two would park the same message.
   */
  private scan(): Promise<void> {
    this.scanning ??= (async () => {
      await this.buffer.retryParking();
      await this.schedule.scan(this.running, this.buffer);
      this.pump();
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  /** Starts attempts while there is room and something due; otherwise sets the timer. */
  private pump(): void {
    if (this.closing) return;
    clearTimeout(this.timer);
    const limit = this.deps.config.api.concurrency;
    while (this.running.size < limit) {
      const now = this.now();
      const paused = this.pause.active;
      if (paused) {
        // one probe at a time, when the pause is over, with whichever message is next
        if (this.running.size > 0) return;
        if (now < this.pause.until) return this.wake(this.pause.until - now);
      }
      const next = this.schedule.next(paused ? now : Infinity, this.running);
      const dueNow = next !== undefined && next.at <= now;
      if (this.buffer.waiting > 0 && !paused && (this.freshTurn || !dueNow)) {
        this.freshTurn = false;
        this.startFresh(this.buffer.shift()!);
        this.buffer.makeRoom();
        continue;
      }
      this.freshTurn = true;
      if (!next) return;
      if (next.at > now) return this.wake(next.at - now);
      this.schedule.take(next.id);
      const run = this.process(next.id, paused).finally(() => {
        this.running.delete(next.id);
        this.pump();
      });
      this.running.set(next.id, run);
    }
  }

  /** Starts the first attempt of a fresh message: no claim, no read of its state. */
  private startFresh({ entry, raw }: Ready): void {
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
        this.schedule.add(id, entry.nextAttemptAt);
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
}
