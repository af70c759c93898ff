// The durable queue on disk, as one facade over its rooms: layout.ts (folders and paths),
// fresh.ts (messages just accepted), states.ts (waiting, claimed, dead), recover.ts (crash
// recovery at start), signals.ts and lookups.ts (operators' signals and read-only lookups).
// A message just accepted is a record of its accepting process's journal (journal.ts) or one
// file (state line, then raw bytes) in that process's claim folder; one that waits has its raw
// bytes in msg/ and its state in queue/ (waiting), active/ (claimed), dead/ or held/ (a route's
// policy held it).
import { fsyncDir } from '../lib/durable-fs.js';
import { FreshMessages } from './fresh.js';
import { SpoolLayout, type EntryState, type ParkState } from './layout.js';
import { locateRaw } from './lookups.js';
import type { QueueEntry } from './queue-entry.js';
import { recover, requeueClaims, type RecoveryReport } from './recover.js';
import { signal, takeSignals } from './signals.js';
import * as states from './states.js';

export {
  isFinal,
  isNotFound,
  type EntryState,
  type ParkState,
} from './layout.js';
export type { RecoveryReport } from './recover.js';

/**
 * The spool. Every transition is a rename within one file system, so a crash at any point leaves
 * either the old state or the new one; claims are renames too, so two processes (the daemon and
 * a `queue` command) never both own an entry.
 */
export class Spool {
  readonly tmpDir: string;
  readonly msgDir: string;
  private readonly layout: SpoolLayout;
  private readonly fresh: FreshMessages;

  /**
   * @param claimDir - where this process's claims live: `active`, or in a cluster `active-<n>`
   * for worker slot n, so the worker that replaces a dead one can take back its claims alone
   * @param dirSync - fsyncs a folder (a test can make it fail)
   */
  constructor(
    readonly dir: string,
    claimDir = 'active',
    dirSync: (dir: string) => Promise<void> = fsyncDir,
  ) {
    this.layout = new SpoolLayout(dir, claimDir, dirSync);
    this.fresh = new FreshMessages(this.layout);
    this.tmpDir = this.layout.tmpDir;
    this.msgDir = this.layout.msgDir;
  }

  /** Creates the folders (owner-only, looser ones tightened); safe on an existing spool. */
  async init(): Promise<this> {
    await this.layout.init();
    return this;
  }

  /** Every claim folder of the spool: `active` and the cluster workers' `active-<n>`. */
  claimFolders(): Promise<string[]> {
    return this.layout.claimFolders();
  }

  /**
   * Tells a running daemon that a waiting entry changed on disk (`queue retry`): its rescan
   * re-reads only new and signalled entries, not the whole queue.
   */
  signal(id: string): Promise<void> {
    return signal(this.layout, id);
  }

  /** The ids signalled since the last call; their signals are consumed. */
  takeSignals(): Promise<string[]> {
    return takeSignals(this.layout);
  }

  /** Where the raw message of a new id is written while it is received. */
  tmpMessagePath(id: string): string {
    return this.layout.tmpMessagePath(id);
  }

  /** The raw message of a spooled entry. */
  messagePath(id: string): string {
    return this.layout.messagePath(id);
  }

  /**
   * Spools a message as waiting (inject); `into: 'active'` keeps it claimed by this process.
   * SMTP accepts use commitFresh instead.
   */
  commit(
    entry: QueueEntry,
    tmpMessage: string,
    into: 'queue' | 'active' | 'held' = 'queue',
  ): Promise<void> {
    return states.commit(this.layout, entry, tmpMessage, into);
  }

  /** Where a fresh message's own file lives: in this process's claim folder, or `folder`. */
  freshPath(id: string, folder = this.layout.claimDir): string {
    return this.layout.freshPath(id, folder);
  }

  /** Makes a received message's file durable as a fresh one; only then may the client hear 250. */
  commitFresh(id: string, tmpPath: string): Promise<void> {
    return this.fresh.commitFresh(id, tmpPath);
  }

  /** Makes a small message durable as a journal record; returns where its bytes lie. */
  journalFresh(entry: QueueEntry, raw: Buffer): Promise<QueueEntry> {
    return this.fresh.journalFresh(entry, raw);
  }

  /** The file a fresh message's bytes are in: a journal segment, or its own file. */
  freshRawPath(id: string): string {
    return this.fresh.rawPath(id);
  }

  /** Turns a fresh message into a spooled one in `to` (queue/, dead/, held/) with state `entry`. */
  park(
    entry: QueueEntry,
    to: ParkState,
    folder = this.layout.claimDir,
  ): Promise<void> {
    return this.fresh.park(entry, to, folder);
  }

  /** Hands a fresh message back after an attempt that could not be filed (fresh.ts). */
  releaseFresh(entry: QueueEntry, at: number): Promise<'parked' | 'released'> {
    return this.fresh.releaseFresh(entry, at);
  }

  /** The file holding an entry's raw message: msg/, a claim folder, or a journal segment. */
  locateRaw(id: string): Promise<string | null> {
    return locateRaw(this.layout, id);
  }

  /** Removes a fresh message for good: its journal record marked done, or its file deleted. */
  removeFresh(id: string): Promise<void> {
    return this.fresh.remove(id);
  }

  /** Fresh messages of this process in its journal (for the spool gauge and tests). */
  get journaled(): number {
    return this.fresh.journaled;
  }

  /**
   * No more fresh messages (journaled or committed) from here on: they are refused, so their
   * senders hear 451. What this process holds is still delivered and marked done. For a cluster
   * worker whose primary is gone: a new primary may be putting back its claims.
   */
  stopAccepting(): void {
    this.fresh.stopAccepting();
  }

  /**
   * Closes the journal's files (at shutdown): what is in it is parked at the next start, and
   * nothing more is journaled.
   */
  close(): void {
    this.fresh.close();
  }

  /** Claims a waiting entry (queue/ -> active/); null when someone else has it or it is gone. */
  claim(id: string): Promise<QueueEntry | null> {
    return states.claim(this.layout, id);
  }

  /** Takes an entry out of `from` for an operator's command (renamed into tmp/). */
  take(id: string, from: EntryState): Promise<QueueEntry | null> {
    return states.take(this.layout, id, from);
  }

  /** Reads an entry's state; null when there is none in that state (claims: any process's). */
  read(state: EntryState, id: string): Promise<QueueEntry | null> {
    return states.read(this.layout, state, id);
  }

  /** Finds an entry in whichever state holds it. */
  find(id: string): Promise<{ state: EntryState; entry: QueueEntry } | null> {
    return states.find(this.layout, id);
  }

  /** Writes an entry's new state and moves it from `from` to `to`, never in two at once. */
  move(
    entry: QueueEntry,
    from: EntryState | null,
    to: EntryState,
  ): Promise<void> {
    return states.move(this.layout, entry, from, to);
  }

  /** Hands a claimed entry back to queue/; false when nothing was claimed. */
  release(id: string): Promise<boolean> {
    return states.release(this.layout, id);
  }

  /** Removes an entry and its raw message for good (delivered, refused, or purged). */
  remove(id: string, from: EntryState | null): Promise<void> {
    return states.remove(this.layout, id, from);
  }

  /** The ids in one state, oldest first (ids sort by time). */
  ids(state: EntryState): Promise<string[]> {
    return states.ids(this.layout, state);
  }

  /** Takes back the claims left in claim folders by a process that died; returns how many. */
  requeueClaims(
    folders: string[] = [this.layout.claimDir],
    damaged: string[] = [],
  ): Promise<number> {
    return requeueClaims(this.layout, this.fresh, folders, damaged);
  }

  /** Every entry in one state, oldest first; entries that vanish while read are skipped. */
  list(state: EntryState): Promise<QueueEntry[]> {
    return states.list(this.layout, state);
  }

  /** Mends the spool after a crash; run once at start, before any worker. */
  recover(now: number, damaged: string[] = []): Promise<RecoveryReport> {
    return recover(this.layout, this.fresh, now, damaged);
  }
}
