// Delivered routes (Message-ID, mailbox and fingerprint): looked up in memory, logged per process.
import { hash } from 'node:crypto';
import { DedupeLog } from './dedupe-log.js';
import type { Claim, DedupeRecords } from './dedupe-records.js';
import { RecordTable } from './record-table.js';

export interface DedupeOptions {
  /**
   * The log this process appends to (`<name>.<generation>.log`): one name per process that
   * may run at the same time, e.g. its claim folder's name. `active` by default.
   */
  name?: string;
  /**
   * Other processes (cluster workers) record deliveries in the same folder: a lookup that
   * misses reads what their logs gained, at most every `refreshMs`. Without it (one daemon per
   * spool, which its lock enforces) a lookup never touches the disk. On by default.
   */
  shared?: boolean;
  /** how stale the view of the other processes' records may get; 1000 ms by default */
  refreshMs?: number;
  /**
   * The most records kept in memory; past it the oldest are forgotten (a resend of one of
   * those is posted again: a duplicate, never a loss). Unbounded by default.
   */
  maxRecords?: number;
}

/**
 * The records live in memory (RecordTable: 96 bits of key and a time each, 21 bytes a slot) and in
 * append-only logs (DedupeLog): one per process, `<time> <key>` per line, lines that arrive
 * together written at once. Every log is read at start, so records survive restarts. Writes are
 * not fsynced: losing the last ones in a power cut costs at most one duplicate post, which the
 * contract allows. prune() forgets expired records and rewrites this process's log.
 */
export class DedupeStore implements DedupeRecords {
  /** key -> ms of its last delivery, as known to this process */
  private readonly seen = new RecordTable();
  private readonly logs: DedupeLog;
  private readonly shared: boolean;
  private readonly refreshMs: number;
  private readonly maxRecords: number;
  private loading?: Promise<void>;

  constructor(
    readonly dir: string,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    options: DedupeOptions = {},
  ) {
    this.shared = options.shared ?? true;
    this.refreshMs = options.refreshMs ?? 1000;
    this.maxRecords = options.maxRecords ?? Infinity;
    this.logs = new DedupeLog(dir, options.name ?? 'active', windowMs, now, {
      get: key => this.seen.get(key),
      remember: (key, time) => this.remember(key, time),
      within: time => this.within(time),
    });
  }

  /**
   * The record key of a normalised Message-ID, a mailbox (or route) key and the message's
   * fingerprint (mail/fingerprint.ts): 96 bits of their SHA-256, so two different triples never
   * meet in practice (about 1 in 10^23 at a million). The fingerprint keeps a stranger who
   * reuses a Message-ID from making the genuine message a "duplicate"; an entry spooled before
   * fingerprints existed has none and keys as it did then.
   */
  static key(messageId: string, mailbox: string, fingerprint?: string): string {
    const text = fingerprint
      ? `${messageId}\n${mailbox}\n${fingerprint}`
      : `${messageId}\n${mailbox}`;
    // 16 base64url characters are exactly the first 12 bytes (one-shot: no Hash object)
    return hash('sha256', text, 'base64url').slice(0, 16);
  }

  /** Records held in memory (for the README's sizing and for tests). */
  get size(): number {
    return this.seen.size;
  }

  /** True when the pair was delivered within the window. */
  async has(key: string): Promise<boolean> {
    if (this.windowMs <= 0) return false;
    await this.load();
    if (this.fresh(key) || !this.shared) return this.fresh(key);
    if (Date.now() - this.logs.refreshedAt >= this.refreshMs) {
      await this.logs.refresh().catch(() => undefined);
    }
    return this.fresh(key);
  }

  /** DedupeRecords: one process alone knows no other poster, so never `busy`. */
  async claim(key: string): Promise<Claim> {
    return (await this.has(key)) ? 'duplicate' : 'new';
  }

  /** DedupeRecords: nothing is held locally between claim() and add(). */
  async release(): Promise<void> {}

  /** Records a delivery now; resolves once its line is written (with others of the moment). */
  async add(key: string): Promise<void> {
    if (this.windowMs <= 0) return;
    await this.load();
    const time = this.now();
    this.remember(key, time);
    await this.logs.append(key, time);
  }

  /**
   * Forgets records older than the window, rewrites this process's log with its live ones,
   * and removes other logs nobody has written to within the window. Returns how many went.
   */
  async prune(): Promise<number> {
    if (this.windowMs <= 0) return 0;
    await this.load();
    const before = this.seen.size;
    this.seen.deleteWhere(time => !this.within(time));
    await this.logs.compact();
    await this.logs.removeExpired();
    return before - this.seen.size;
  }

  /** Closes this process's log once the writes queued so far are done. */
  async close(): Promise<void> {
    await this.logs.close();
  }

  /**
   * Records `key` at `time`. Past `maxRecords` the oldest are forgotten first, before it is
   * set, so that it is never among them (a time tied with others, or older after the clock
   * stepped back): a sixteenth of the cap more than the excess, so that the table is not
   * scanned for every record added at the cap.
   */
  private remember(key: string, time: number): void {
    // below the cap (the common case) no lookup is needed to know that
    if (this.seen.size >= this.maxRecords && this.seen.get(key) === undefined) {
      const excess = this.seen.size + 1 - this.maxRecords;
      this.seen.evictOldest(excess + Math.floor(this.maxRecords / 16));
    }
    this.seen.set(key, time);
  }

  private within(time: number): boolean {
    return this.now() - time < this.windowMs;
  }

  private fresh(key: string): boolean {
    const time = this.seen.get(key);
    return time !== undefined && this.within(time);
  }

  /** Reads every log once; a folder that cannot be read leaves the store answering from memory. */
  private load(): Promise<void> {
    this.loading ??= this.logs.load();
    return this.loading;
  }
}
