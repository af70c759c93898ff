// Flow control of this process's fresh messages: the ready list, its raw-bytes budget,
// waitForRoom/makeRoom, and their parking in queue/ (glossary: src/spool/fresh.ts).
import { errorFields, type Logger } from '../observability/logger.js';
import type { QueueEntry } from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';

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
export interface Ready {
  entry: QueueEntry;
  raw?: Buffer;
}

export interface IntakeBufferDeps {
  spool: Spool;
  log: Logger;
  /** attempts allowed at once (api.concurrency) */
  concurrency: number;
  /**
   * A parking finished (not called once closing): `parked` with its state as accepted, due at
   * `at`; `released` with a newer state, which carries its own due time (not before `at`).
   */
  onParked(id: string, outcome: 'parked' | 'released', at: number): void;
  /**
   * A fresh message came within `concurrency` of the head of the ready list: its attempt is
   * among the next to start (the dedupe store may ask ahead for its keys). Once per message.
   */
  onNext?(entry: QueueEntry): void;
}

/** The fresh messages this process holds: waiting for their first attempt, or in it. */
export class IntakeBuffer {
  /** fresh messages (one file in our claim folder) waiting for their first attempt */
  private readonly ready: Ready[] = [];
  private readyRawBytes = 0;
  /** fresh messages this process holds, waiting or in an attempt, by id */
  private readonly fresh = new Map<string, QueueEntry>();
  /** fresh messages whose move to queue/ failed, tried again at every scan */
  private readonly unparked = new Map<
    string,
    { entry: QueueEntry; at: number }
  >();
  /** flow control: transactions waiting for room (see waitForRoom), oldest first */
  private readonly roomWaiters = new Set<() => void>();
  private readonly flowBacklog: number;
  private closing = false;

  constructor(private readonly deps: IntakeBufferDeps) {
    this.flowBacklog = Math.max(FLOW_BACKLOG_MIN, 4 * deps.concurrency);
  }

  /** Fresh messages accepted and waiting for their first attempt. */
  get waiting(): number {
    return this.ready.length;
  }

  /** True when no more fresh messages may wait in memory: the next one is parked. */
  get full(): boolean {
    return this.ready.length >= READY_LIMIT;
  }

  isFresh(id: string): boolean {
    return this.fresh.has(id);
  }

  get(id: string): QueueEntry | undefined {
    return this.fresh.get(id);
  }

  /** Holds a fresh message: its first attempt is to come, or made by the caller (hybrid). */
  hold(entry: QueueEntry): void {
    this.fresh.set(entry.id, entry);
  }

  /** Forgets a fresh message: filed, removed or parked. */
  forget(id: string): void {
    this.fresh.delete(id);
  }

  /** Adds a held fresh message to the ready list, with `raw` while the budget allows. */
  push(entry: QueueEntry, raw?: Buffer): void {
    const keep = raw && this.readyRawBytes + raw.length <= READY_RAW_BYTES;
    if (keep) this.readyRawBytes += raw.length;
    this.ready.push({ entry, raw: keep ? raw : undefined });
    if (this.ready.length <= this.deps.concurrency) this.deps.onNext?.(entry);
  }

  /** The next fresh message for its first attempt, if any; its bytes leave the budget. */
  shift(): Ready | undefined {
    const next = this.ready.shift();
    if (next?.raw) this.readyRawBytes -= next.raw.length;
    const coming = this.ready[this.deps.concurrency - 1];
    if (coming) this.deps.onNext?.(coming.entry);
    return next;
  }

  /** Empties the ready list (a pause starts) and lets waiting transactions go on. */
  drain(): Ready[] {
    const waiting = this.ready.splice(0);
    for (const { raw } of waiting) {
      if (raw) this.readyRawBytes -= raw.length;
    }
    this.makeRoom();
    return waiting;
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

  /** Lets the waiting transactions go on once the backlog is down to the flow limit. */
  makeRoom(): void {
    if (this.roomWaiters.size === 0) return;
    if (this.ready.length > this.flowBacklog && !this.closing) return;
    for (const done of this.roomWaiters) done();
  }

  /** Stops parking more than it must, and lets every waiting transaction go on. */
  close(): void {
    this.closing = true;
    this.makeRoom();
  }

  /**
   * Hands a fresh message over to queue/, due at `at`: parked with its state as accepted, or,
   * when an earlier parking got as far as writing a newer state on the claim, with that one.
   * When that fails (a disk error) it is tried again at every scan until it works: a message
   * that was answered 250 never waits unseen in this process's claim folder. Never rejects.
   */
  async park(entry: QueueEntry, at: number): Promise<void> {
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
    this.deps.onParked(entry.id, outcome, at);
  }

  /** Parks the fresh messages a pause took off the ready list, a few at a time. */
  async parkAll(waiting: Ready[]): Promise<void> {
    // a few at a time: each one reads its record and writes and fsyncs two files.
    // park never rejects: a parking that fails is retried at every scan
    await Promise.all(
      Array.from({ length: PARK_AT_ONCE }, async () => {
        // when closing, the rest stays where it is: the next start parks it
        for (
          let next = waiting.shift();
          next && !this.closing;
          next = waiting.shift()
        ) {
          await this.park(next.entry, next.entry.nextAttemptAt);
        }
      }),
    );
  }

  /** Tries again the parkings that failed (at every scan). */
  async retryParking(): Promise<void> {
    for (const { entry, at } of [...this.unparked.values()]) {
      await this.park(entry, at);
    }
  }
}
