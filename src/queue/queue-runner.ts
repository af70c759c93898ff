// The delivery workers' lifecycle and pump: start what is due, attempt it, file the result.
import type { Config } from '../config/schema.js';
import type { PayloadSink } from '../pipeline/payload-sink.js';
import type { Logger } from '../observability/logger.js';
import { errorFields } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { DedupeRecords } from '../dedupe/dedupe-records.js';
import type { QueueEntry } from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';
import { ResultFiler } from './file-result.js';
import type { SenderAuthenticator } from '../auth/sender-auth.js';
import { heldAttempt, type HeldAttempt } from './held-attempt.js';
import { HeldExpiry } from './held-expiry.js';
import { IntakeBuffer } from './intake-buffer.js';
import { DeliveryPause } from './pause.js';
import { Attempts } from './run-attempt.js';
import { Schedule } from './schedule.js';
import { withinTime } from '../lib/time-limit.js';

export interface QueueRunnerDeps {
  config: Pick<Config, 'api' | 'delivery' | 'mapping'>;
  spool: Spool;
  dedupe: DedupeRecords;
  sink: PayloadSink;
  log: Logger;
  metrics: Metrics;
  now?: () => number;
  random?: () => number;
  /** told when delivery pauses (with the reason) or resumes (null) */
  onPauseChange?: (reason: string | null) => void;
  /** judges senders for the routes that ask */
  senderAuth?: SenderAuthenticator;
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
  private readonly attempts: Attempts;
  private readonly heldExpiry: HeldExpiry;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private scanTimer?: NodeJS.Timeout;
  private closing = false;
  private scanning: Promise<void> | undefined;
  private sweeping: Promise<void> | undefined;
  /** hybrid attempts that outlived their sender's wait, filed when they end (see HeldAttempt) */
  private readonly late = new Set<Promise<void>>();
  private closed?: Promise<void>;

  constructor(private readonly deps: QueueRunnerDeps) {
    const { config, spool, log, metrics } = deps;
    this.now = deps.now ?? Date.now;
    // each part takes what it needs of these
    const base = {
      spool,
      log,
      metrics,
      now: this.now,
      retry: config.delivery.retry,
    };
    this.schedule = new Schedule(base);
    this.buffer = new IntakeBuffer({
      ...base,
      concurrency: config.api.concurrency,
      onParked: (id, outcome, at) => {
        // a state released as it was carries its own due time: the next scan reads it
        if (outcome === 'parked') this.schedule.add(id, at);
        else this.schedule.hold(id, at);
        this.pump();
      },
      onNext: entry => this.attempts.claimAhead(entry),
    });
    this.pause = new DeliveryPause({
      ...base,
      onPauseChange: deps.onPauseChange,
    });
    const held = { buffer: this.buffer, schedule: this.schedule };
    this.filer = new ResultFiler({
      ...base,
      ...held,
      pause: this.pause,
      dryRun: deps.sink.kind === 'dry-run',
    });
    this.heldExpiry = new HeldExpiry({
      ...base,
      retentionMs: config.delivery.heldRetentionMs,
    });
    this.attempts = new Attempts({
      ...base,
      ...held,
      filer: this.filer,
      attempt: {
        config,
        sink: deps.sink,
        dedupe: deps.dedupe,
        senderAuth: deps.senderAuth,
        now: this.now,
        random: deps.random ?? Math.random,
        attachmentDir: spool.tmpDir,
      },
    });
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
   * Hybrid mode: holds a fresh message just committed (Spool.commitFresh, journalFresh) and
   * starts its first attempt now, outside the pump; the caller files it through the handle.
   */
  attemptNow(entry: QueueEntry, raw?: Buffer): HeldAttempt {
    this.buffer.hold(entry);
    return heldAttempt(
      entry,
      this.attempts.claimed(entry, raw),
      this.filer,
      filing => {
        this.late.add(filing);
        void filing.then(() => this.late.delete(filing));
      },
    );
  }

  /**
   * Waits up to `ms` for the attempts in flight (late hybrid ones included) to end and be
   * filed: at close(), and again once the sink is closed, which ends the ones close() gave up
   * on at once (a filing cut off by the process's exit would leave an outcome unrecorded).
   */
  async settled(ms: number): Promise<void> {
    if (this.running.size === 0 && this.late.size === 0) return;
    await withinTime(
      Promise.allSettled([...this.running.values(), ...this.late]),
      ms,
      () => undefined,
    );
  }

  /** Stops claiming; waits up to delivery.shutdownTimeoutMs for attempts in flight. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      this.buffer.close();
      clearTimeout(this.timer);
      clearInterval(this.scanTimer);
      await this.sweeping;
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
   * Retries the parkings that failed, then reloads due times from queue/, then starts a sweep
   * of held/ (see sweepHeld). A scan asked for while one runs (a slow disk) is that one: two
   * would park the same message.
   */
  private scan(): Promise<void> {
    this.scanning ??= (async () => {
      await this.buffer.retryParking();
      await this.schedule.scan(this.running, this.buffer);
      this.pump();
      this.sweepHeld();
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  /**
   * Deletes the held messages past delivery.heldRetentionMs (HeldExpiry), one sweep at a time,
   * beside delivery: a large held/ read at the first scan does not hold up the start.
   */
  private sweepHeld(): void {
    if (this.closing || this.sweeping) return;
    this.sweeping = this.heldExpiry
      .sweep()
      .catch((err: unknown) => {
        this.deps.log.error('held messages sweep failed', errorFields(err));
      })
      .finally(() => (this.sweeping = undefined));
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
        const ready = this.buffer.shift()!;
        this.track(ready.entry.id, this.attempts.fresh(ready));
        this.buffer.makeRoom();
        continue;
      }
      this.freshTurn = true;
      if (!next) return;
      if (next.at > now) return this.wake(next.at - now);
      this.schedule.take(next.id);
      this.track(next.id, this.attempts.queued(next.id, paused));
    }
  }

  /** Counts an attempt in flight until it ends; then the pump looks for the next. */
  private track(id: string, attempt: Promise<void>): void {
    const run = attempt.finally(() => {
      this.running.delete(id);
      this.pump();
    });
    this.running.set(id, run);
  }

  private wake(ms: number): void {
    const delay = Math.min(
      Math.max(ms, 0),
      this.deps.config.delivery.scanIntervalMs,
    );
    this.timer = setTimeout(() => this.pump(), delay);
    this.timer.unref();
  }
}
