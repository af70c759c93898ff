// The durable queue on disk: a message just accepted is a record of its accepting process's
// journal (a small one: journal.ts) or one file (state line, then raw bytes) in that process's
// claim folder; one that waits has its raw bytes in msg/ and its state in queue/ (waiting),
// active/ (claimed) or dead/.
import {
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  exists,
  fsyncDir,
  GroupCommit,
  writeFileAtomic,
  writeFileDurable,
} from './durable-fs.js';
import { Journal, readSegment, segmentsOf } from './journal.js';
import { withoutPosition, type QueueEntry } from './queue-entry.js';
import { parseSpoolHeader, readSpoolFile, spoolHeader } from './spool-file.js';

/** Where an entry's state file lives: waiting, claimed by a worker, or dead. */
export type EntryState = 'queue' | 'active' | 'dead';

const STATES: readonly EntryState[] = ['queue', 'active', 'dead'];

/** What recover() found and mended at start. */
export interface RecoveryReport {
  removedTmp: number;
  requeued: number;
  orphans: number;
  missingRaw: number;
  /** journal segments with whole records after unreadable bytes: kept as `<name>.damaged` */
  damagedSegments: number;
}

/**
 * The spool. Every transition is a rename within one file system, so a crash at any point leaves
 * either the old state or the new one; claims are renames too, so two processes (the daemon and
 * a `queue` command) never both own an entry.
 */
export class Spool {
  readonly tmpDir: string;
  readonly msgDir: string;
  private readonly dirSyncer: GroupCommit;
  /** this process's journal of fresh small messages, opened with the first */
  private journal: Journal | undefined;
  /**
   * journaled messages whose parking renamed their state into queue/ or dead/ but did not
   * finish (the folder fsync failed): releaseFresh finishes only that
   */
  private readonly parkedInto = new Map<string, 'queue' | 'dead'>();
  /** false once stopAccepting() was called */
  private accepting = true;

  /**
   * @param claimDir - where this process's claims live: `active`, or in a cluster `active-<n>`
   * for worker slot n, so the worker that replaces a dead one can take back its claims alone
   */
  constructor(
    readonly dir: string,
    private readonly claimDir = 'active',
    /** fsyncs a folder (a test can make it fail) */
    dirSync: (dir: string) => Promise<void> = fsyncDir,
  ) {
    this.dirSyncer = new GroupCommit(dirSync);
    this.tmpDir = join(dir, 'tmp');
    this.msgDir = join(dir, 'msg');
  }

  /** Creates the folders; safe to call on an existing spool. */
  async init(): Promise<this> {
    for (const sub of ['tmp', 'msg', 'signal', ...STATES, this.claimDir]) {
      await mkdir(join(this.dir, sub), { recursive: true });
    }
    return this;
  }

  /** Every claim folder of the spool: `active` and the cluster workers' `active-<n>`. */
  async claimFolders(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter(n => /^active(-\d+)?$/.test(n)).sort();
  }

  /**
   * Tells a running daemon that a waiting entry changed on disk (`queue retry`): its rescan
   * re-reads only new and signalled entries, not the whole queue.
   */
  async signal(id: string): Promise<void> {
    await writeFile(join(this.dir, 'signal', id), '');
  }

  /** The ids signalled since the last call; their signals are consumed. */
  async takeSignals(): Promise<string[]> {
    const names = await readdir(join(this.dir, 'signal'));
    for (const name of names) {
      await unlinkIfPresent(join(this.dir, 'signal', name));
    }
    return names;
  }

  /** Where the raw message of a new id is written while it is received. */
  tmpMessagePath(id: string): string {
    return join(this.tmpDir, `${id}.eml`);
  }

  /** The raw message of a spooled entry. */
  messagePath(id: string): string {
    return join(this.msgDir, `${id}.eml`);
  }

  private statePath(state: EntryState, id: string): string {
    return join(
      this.dir,
      state === 'active' ? this.claimDir : state,
      `${id}.json`,
    );
  }

  private tmpStatePath(id: string): string {
    return join(this.tmpDir, `${id}.${process.pid}.${Date.now()}.json`);
  }

  /**
   * Spools a message as waiting (inject): its state file is fsynced, the raw file (already
   * fsynced by the receiver) and the state are renamed into place and both folders fsynced.
   * `into: 'active'` keeps it claimed by this process. SMTP accepts use commitFresh instead.
   */
  async commit(
    entry: QueueEntry,
    tmpMessage: string,
    into: 'queue' | 'active' = 'queue',
  ): Promise<void> {
    const tmpState = this.tmpStatePath(entry.id);
    try {
      await writeFileDurable(tmpState, JSON.stringify(entry));
      await rename(tmpMessage, this.messagePath(entry.id));
      await rename(tmpState, this.statePath(into, entry.id));
      await Promise.all([
        this.dirSyncer.sync(this.msgDir),
        this.dirSyncer.sync(dirname(this.statePath(into, entry.id))),
      ]);
    } catch (err) {
      // every removal is waited for, and one failing (its folder broken too) hides neither
      // the others nor the error that made the commit fail
      await Promise.allSettled([
        rm(tmpMessage, { force: true }),
        rm(tmpState, { force: true }),
        rm(this.messagePath(entry.id), { force: true }),
        rm(this.statePath(into, entry.id), { force: true }),
      ]);
      throw err;
    }
  }

  /**
   * Where a fresh message lives: received and accepted by this process, and still claimed by
   * it. Its one file holds the state at accept time (the header line) and the raw bytes.
   */
  freshPath(id: string, folder = this.claimDir): string {
    return join(this.dir, folder, `${id}.eml`);
  }

  /**
   * Makes a received message durable as a fresh one, claimed by this process: its file (header
   * line and raw bytes, already on disk) is renamed into the claim folder and the folder fsynced
   * (shared with the other commits of the moment). Only after this may the client hear 250.
   */
  async commitFresh(id: string, tmpPath: string): Promise<void> {
    if (!this.accepting) throw new Error('spool no longer accepting');
    const path = this.freshPath(id);
    try {
      // synchronous: a metadata change, cheaper than a thread-pool round trip (durable-fs.ts)
      renameSync(tmpPath, path);
      await this.dirSyncer.sync(join(this.dir, this.claimDir));
    } catch (err) {
      await Promise.allSettled([
        rm(tmpPath, { force: true }),
        rm(path, { force: true }),
      ]);
      throw err;
    }
  }

  /**
   * Makes a received small message durable as a fresh one, claimed by this process: a record of
   * its journal (the header line for `entry`, then `raw`), on disk once this resolves. Only
   * after this may the client hear 250. Returns the entry with where its bytes lie.
   */
  async journalFresh(entry: QueueEntry, raw: Buffer): Promise<QueueEntry> {
    if (!this.accepting) throw new Error('spool no longer accepting');
    this.journal ??= new Journal(join(this.dir, this.claimDir));
    const header = spoolHeader(entry);
    const { offset } = await this.journal.append(entry.id, [header, raw]);
    return {
      ...entry,
      rawOffset: offset + header.length,
      rawLength: raw.length,
    };
  }

  /** The file a fresh message's bytes are in: a journal segment, or its own file. */
  freshRawPath(id: string): string {
    return this.journal?.position(id)?.path ?? this.freshPath(id);
  }

  /**
   * Turns a fresh message into a spooled one in `to` (queue/ or dead/) with the state `entry`.
   * Out of the journal: its raw bytes are written to msg/, its state to `to`, both made durable,
   * and only then is its record marked done. Out of its own file: the state is written into the
   * claim folder first, then the raw file goes to msg/, then the state to `to`. A crash at any
   * step leaves files that requeueClaims() finishes moving.
   */
  async park(
    entry: QueueEntry,
    to: 'queue' | 'dead',
    folder = this.claimDir,
  ): Promise<void> {
    const claimed = join(this.dir, folder, `${entry.id}.json`);
    if (folder === this.claimDir && this.journal?.has(entry.id)) {
      const record = this.journal.read(entry.id)!;
      const parsed = parseSpoolHeader(record);
      if (!parsed) throw new Error(`journal record of ${entry.id} unreadable`);
      await this.writeRaw(entry.id, record.subarray(parsed.offset));
      // as for a file of its own, the state goes on the claim first: when the move to `to`
      // fails, releaseFresh hands on that state, the attempt's outcome kept
      await this.writeState(claimed, withoutPosition(entry));
      await rename(claimed, this.statePath(to, entry.id));
      await this.finishParking(entry.id, to);
      return;
    }
    // a journal record no more: parked already (by a parking whose caller did not hear of it);
    // it has no file of its own whose raw bytes start at rawOffset
    if (entry.rawLength !== undefined) return;
    await this.writeState(claimed, entry);
    await this.adoptRaw(entry.id, folder);
    await rename(claimed, this.statePath(to, entry.id));
  }

  /**
   * Hands a fresh message back after an attempt that could not be filed: parked in queue/ with
   * `entry` due at `at`, or, when a parking of that attempt got as far as writing its state
   * on the claim, that newer state is released to queue/ as it is ('released').
   */
  async releaseFresh(
    entry: QueueEntry,
    at: number,
  ): Promise<'parked' | 'released'> {
    const to = this.parkedInto.get(entry.id);
    if (to && this.journal?.has(entry.id)) {
      // its parking renamed the state into place, but the folder fsync after it failed: only
      // that is done again, the state it wrote kept (known from memory, not from the folder,
      // where another process may have claimed or an operator purged it since)
      await this.finishParking(entry.id, to);
      return 'released';
    }
    if (await exists(join(this.dir, this.claimDir, `${entry.id}.json`))) {
      await this.adoptRaw(entry.id, this.claimDir);
      await this.release(entry.id);
      // a journaled one's raw bytes are in msg/ already (written before the state): out of
      // the journal once the state is durably in queue/
      if (this.journal?.has(entry.id)) {
        await this.finishParking(entry.id, 'queue');
      }
      return 'released';
    }
    await this.park({ ...entry, nextAttemptAt: at }, 'queue');
    return 'parked';
  }

  /**
   * The end of a journaled message's parking, once its state is renamed into `to`: that folder
   * fsynced, then its record marked done. Remembered until then (parkedInto), so that a failed
   * fsync is all releaseFresh does again.
   */
  private async finishParking(id: string, to: 'queue' | 'dead'): Promise<void> {
    this.parkedInto.set(id, to);
    await this.dirSyncer.sync(join(this.dir, to));
    this.journal?.done(id);
    this.parkedInto.delete(id);
  }

  /**
   * Writes a message's raw bytes to msg/<id>.eml durably: fsynced, renamed, and msg/ fsynced
   * unless the caller does that for several (`syncFolder` false).
   */
  private async writeRaw(
    id: string,
    raw: Buffer,
    syncFolder = true,
  ): Promise<void> {
    const tmp = join(this.tmpDir, `${id}.${process.pid}.${Date.now()}.eml`);
    try {
      await writeFileDurable(tmp, raw);
      await rename(tmp, this.messagePath(id));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    if (syncFolder) await this.dirSyncer.sync(this.msgDir);
  }

  /** Moves a fresh message's file from a claim folder to msg/ (none there: moved already). */
  private async adoptRaw(id: string, folder: string): Promise<void> {
    try {
      await rename(this.freshPath(id, folder), this.messagePath(id));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * The file holding an entry's raw message: msg/, or for a fresh one its file in a claim folder
   * or the journal segment its record is in.
   */
  async locateRaw(id: string): Promise<string | null> {
    const folders = await this.claimFolders();
    const candidates = [
      this.messagePath(id),
      ...folders.map(f => this.freshPath(id, f)),
    ];
    for (const path of candidates) {
      if (await exists(path)) return path;
    }
    return (await this.findJournaled(id, folders))?.path ?? null;
  }

  /**
   * Removes a fresh message for good (delivered, or refused while its sender waited): its
   * journal record is marked done, or its file deleted.
   */
  async removeFresh(id: string): Promise<void> {
    if (this.journal?.has(id)) {
      this.journal.done(id);
      return;
    }
    await unlinkIfPresent(this.freshPath(id));
  }

  /** Fresh messages of this process in its journal (for the spool gauge and tests). */
  get journaled(): number {
    return this.journal?.size ?? 0;
  }

  /**
   * No more fresh messages (journaled or committed) from here on: they are refused, so their
   * senders hear 451. What this process holds is still delivered and marked done. For a cluster
   * worker whose primary is gone: a new primary may be putting back its claims.
   */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Closes the journal's files (at shutdown): what is in it is parked at the next start, and
   * nothing more is journaled.
   */
  close(): void {
    this.accepting = false;
    this.journal?.close();
  }

  /**
   * A fresh message of any claim folder's journal, by id, with the segment it is in: read from
   * the disk, for operators' commands (the accepting process may be running).
   */
  private async findJournaled(
    id: string,
    folders: string[],
  ): Promise<{ entry: QueueEntry; path: string } | null> {
    return (await this.journaledEntries(folders)).get(id) ?? null;
  }

  /**
   * Every fresh message in the journal segments of `folders`, read in one pass: its entry (with
   * where its raw bytes lie in the segment) and the segment.
   */
  private async journaledEntries(
    folders: string[],
  ): Promise<Map<string, { entry: QueueEntry; path: string }>> {
    const found = new Map<string, { entry: QueueEntry; path: string }>();
    for (const folder of folders) {
      for (const path of await this.segments(folder)) {
        const { records } = await readSegment(path).catch(() => ({
          records: [],
        }));
        for (const { id, offset, content } of records) {
          const parsed = parseSpoolHeader(content);
          if (parsed?.entry.id !== id) continue;
          const entry = {
            ...parsed.entry,
            rawOffset: offset + parsed.offset,
            rawLength: content.length - parsed.offset,
          };
          found.set(id, { entry, path });
        }
      }
    }
    return found;
  }

  /** The journal segments of a claim folder, oldest first, as paths. */
  private async segments(folder: string): Promise<string[]> {
    const dir = join(this.dir, folder);
    const names = await readdir(dir).catch((): string[] => []);
    return segmentsOf(dir, names.sort());
  }

  /**
   * Writes an entry's state to `target` atomically (tmp/, fsync, rename over). On failure the
   * old state stays in place and no half-done copy is left in tmp/.
   */
  private async writeState(target: string, entry: QueueEntry): Promise<void> {
    const tmp = this.tmpStatePath(entry.id);
    try {
      await writeFileAtomic(tmp, target, JSON.stringify(entry));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Claims a waiting entry (queue/ -> active/); null when someone else has it or it is gone. */
  async claim(id: string): Promise<QueueEntry | null> {
    try {
      await rename(this.statePath('queue', id), this.statePath('active', id));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    return this.read('active', id);
  }

  /** Takes an entry out of `from` for an operator's command (renamed into tmp/). */
  async take(id: string, from: EntryState): Promise<QueueEntry | null> {
    const held = this.tmpStatePath(id);
    try {
      await rename(this.statePath(from, id), held);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    const entry = JSON.parse(await readFile(held, 'utf8')) as QueueEntry;
    await unlink(held);
    return entry;
  }

  /** Reads an entry's state; null when there is none in that state (claims: any process's). */
  async read(state: EntryState, id: string): Promise<QueueEntry | null> {
    const entry = await readEntry(this.statePath(state, id));
    if (entry || state !== 'active') return entry;
    for (const folder of await this.claimFolders()) {
      const other =
        (folder === this.claimDir
          ? null
          : await readEntry(join(this.dir, folder, `${id}.json`))) ??
        (await readFresh(this.freshPath(id, folder)));
      if (other) return other;
    }
    return (
      (await this.findJournaled(id, await this.claimFolders()))?.entry ?? null
    );
  }

  /** Finds an entry in whichever state holds it. */
  async find(
    id: string,
  ): Promise<{ state: EntryState; entry: QueueEntry } | null> {
    for (const state of STATES) {
      const entry = await this.read(state, id);
      if (entry) return { state, entry };
    }
    return null;
  }

  /**
   * Writes an entry's new state and moves it from `from` to `to`. Out of queue/ or active/, the
   * new state is first written over the caller's own file (tmp + rename), then that file is
   * renamed into `to`: the entry is never in two folders at once, so no other process can claim
   * a copy that this one then deletes. A crash in between leaves the new state in `from`.
   */
  async move(
    entry: QueueEntry,
    from: EntryState | null,
    to: EntryState,
  ): Promise<void> {
    // Nothing but an operator's command takes from dead/: out of there, write the new state in
    // place first and drop the dead one after, so a failed write leaves the dead entry whole.
    const inPlace = from !== null && from !== 'dead';
    const target = this.statePath(inPlace ? from : to, entry.id);
    await this.writeState(target, entry);
    if (!from || from === to) return;
    if (inPlace) await rename(target, this.statePath(to, entry.id));
    else await unlinkIfPresent(this.statePath(from, entry.id));
  }

  /**
   * Hands a claimed entry back to queue/ (active/ -> queue/) after an attempt that could not be
   * filed. A state already written to queue/ is newer and is kept. False when nothing was claimed.
   * A dead state (its move to dead/ failed) goes to queue/ too: the next attempt files it again,
   * with the outcome's log line, rather than it landing in dead/ unannounced.
   */
  async release(id: string): Promise<boolean> {
    try {
      if (await this.read('queue', id)) {
        await unlink(this.statePath('active', id));
      } else {
        await rename(this.statePath('active', id), this.statePath('queue', id));
      }
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Removes an entry and its raw message for good (delivered, refused, or purged). */
  async remove(id: string, from: EntryState | null): Promise<void> {
    if (from) await unlinkIfPresent(this.statePath(from, id));
    await unlinkIfPresent(this.messagePath(id));
  }

  /** The ids in one state, oldest first (ids sort by time). */
  async ids(state: EntryState): Promise<string[]> {
    const folders = state === 'active' ? await this.claimFolders() : [state];
    const ids: string[] = [];
    for (const folder of folders) {
      const names = new Set(
        await readdir(join(this.dir, folder)).catch((): string[] => []),
      );
      for (const n of names) {
        if (n.endsWith('.json')) ids.push(n.slice(0, -'.json'.length));
        // a fresh message (raw and state in one file), unless its parking was cut short
        else if (n.endsWith('.eml') && !names.has(`${n.slice(0, -4)}.json`)) {
          ids.push(n.slice(0, -'.eml'.length));
        }
      }
    }
    const journaled =
      state === 'active'
        ? [...(await this.journaledEntries(folders)).keys()]
        : [];
    if (journaled.length > 0) {
      // a record whose message has a state in queue/, dead/ or a claim folder was parked, its
      // done mark still to come (or lost): it is listed where its state is, once
      const elsewhere = new Set(ids);
      for (const other of ['queue', 'dead'] as const) {
        for (const id of await this.ids(other)) elsewhere.add(id);
      }
      for (const id of journaled) if (!elsewhere.has(id)) ids.push(id);
    }
    return [...new Set(ids)].sort();
  }

  /**
   * Takes back the claims left in claim folders (by a process that died): each goes back to
   * queue/, or on to dead/ when its move there was cut short; a fresh message is parked in
   * queue/ with the state of its header line; journal segments kept as damaged are added to
   * `damaged`. Returns how many.
   */
  async requeueClaims(
    folders: string[] = [this.claimDir],
    damaged: string[] = [],
  ): Promise<number> {
    const waiting = new Set(await this.ids('queue'));
    // claimed by any process, this one's folders or another's: a journal record of such a
    // message was parked already and is being delivered, or its parking was cut short
    const claimed = new Set<string>();
    for (const folder of await this.claimFolders()) {
      for (const name of await readdir(join(this.dir, folder)).catch(
        (): string[] => [],
      )) {
        if (name.endsWith('.json')) claimed.add(name.slice(0, -'.json'.length));
      }
    }
    let count = 0;
    for (const folder of folders) {
      count += await this.requeueJournal(folder, waiting, claimed, damaged);
      const names = await readdir(join(this.dir, folder)).catch(() => []);
      const states = new Set(
        names.filter(n => n.endsWith('.json')).map(n => n.slice(0, -5)),
      );
      for (const name of names.filter(n => n.endsWith('.eml'))) {
        const id = name.slice(0, -'.eml'.length);
        if (states.has(id)) {
          // its parking was cut short after the state was written: the raw file goes on
          await this.adoptRaw(id, folder);
          continue;
        }
        const fresh = await readFresh(join(this.dir, folder, name));
        if (fresh && fresh.id !== id) {
          // another message's bytes under this name: a delivered file that was being written
          // over for a new message when the power went, its move to free/ lost. That new
          // message was never answered 250 (its commit fsyncs this folder, and the move with it).
          await rm(join(this.dir, folder, name), { force: true });
        } else if (fresh) {
          await this.park(fresh, 'queue', folder);
          waiting.add(id);
        } else {
          // no whole header line: never committed (commitFresh renames a complete file)
          await rm(join(this.dir, folder, name), { force: true });
        }
        count++;
      }
      for (const id of states) {
        const path = join(this.dir, folder, `${id}.json`);
        const claimed = await readEntry(path);
        if (claimed?.dead) {
          // its move to dead/ was cut short: finish it
          await rename(path, this.statePath('dead', id));
        } else if (waiting.has(id)) {
          await rm(path, { force: true });
        } else {
          await rename(path, this.statePath('queue', id));
          waiting.add(id);
        }
        count++;
      }
    }
    return count;
  }

  /**
   * Parks the messages of a claim folder's journal segments (left by a process that died or
   * stopped) in queue/, durably, then deletes each segment, or keeps it as `<name>.damaged`
   * (listed in `damaged`) when whole records followed bytes that were not. A message already in
   * queue/, dead/ or a claim folder (its parking done, its record not yet marked) is left where
   * it is. The segments of this process's own journal are never touched.
   */
  private async requeueJournal(
    folder: string,
    waiting: Set<string>,
    claimed: Set<string>,
    damaged: string[],
  ): Promise<number> {
    let count = 0;
    let dead: Set<string> | undefined;
    for (const path of await this.segments(folder)) {
      if (this.journal?.owns(path)) continue;
      const contents = await readSegment(path);
      const parked: Array<{ id: string; state: QueueEntry }> = [];
      let unreadable = false;
      for (const { id, content } of contents.records) {
        dead ??= new Set(await this.ids('dead'));
        const parsed = parseSpoolHeader(content);
        if (!parsed || parsed.entry.id !== id) {
          // whole by its checksum, yet no header line of its own: kept for the operator
          unreadable = true;
          continue;
        }
        if (waiting.has(id) || dead.has(id) || claimed.has(id)) continue;
        // the raw files first, then their states: a state never names a raw file not on disk
        await this.writeRaw(id, content.subarray(parsed.offset), false);
        parked.push({ id, state: withoutPosition(parsed.entry) });
      }
      if (parked.length > 0) {
        await this.dirSyncer.sync(this.msgDir);
        for (const { id, state } of parked) {
          await this.writeState(this.statePath('queue', id), state);
          waiting.add(id);
        }
        await this.dirSyncer.sync(join(this.dir, 'queue'));
      }
      count += parked.length;
      if (contents.damaged || unreadable) {
        await rename(path, `${path}.damaged`);
        damaged.push(`${path}.damaged`);
      } else {
        await rm(path, { force: true });
      }
    }
    return count;
  }

  /** Every entry in one state, oldest first; entries that vanish while read are skipped. */
  async list(state: EntryState): Promise<QueueEntry[]> {
    const entries: QueueEntry[] = [];
    // the journals' messages are read in one pass, not a pass over every segment per message
    const journaled =
      state === 'active'
        ? await this.journaledEntries(await this.claimFolders())
        : new Map<string, { entry: QueueEntry }>();
    for (const id of await this.ids(state)) {
      const entry = journaled.get(id)?.entry ?? (await this.read(state, id));
      if (entry) entries.push(entry);
    }
    return entries;
  }

  /**
   * Mends the spool after a crash; run once at start, before any worker. Temporary files go
   * (their clients never heard 250), claimed entries are made due again, raw files without a
   * state are removed, and states without a raw file are moved to dead/ for the operator.
   * Journal segments kept as damaged (see requeueClaims) are added to `damaged`.
   */
  async recover(now: number, damaged: string[] = []): Promise<RecoveryReport> {
    const report: RecoveryReport = {
      removedTmp: 0,
      requeued: 0,
      orphans: 0,
      missingRaw: 0,
      damagedSegments: 0,
    };
    for (const name of await readdir(this.tmpDir)) {
      await rm(join(this.tmpDir, name), { force: true });
      report.removedTmp++;
    }
    // the free pools of versions before the journal: files kept for reuse, never mail
    await rm(join(this.dir, 'free'), { recursive: true, force: true });
    report.requeued = await this.requeueClaims(
      await this.claimFolders(),
      damaged,
    );
    report.damagedSegments = damaged.length;
    const waiting = new Set(await this.ids('queue'));
    const known = new Set([...waiting, ...(await this.ids('dead'))]);
    const raw = (await readdir(this.msgDir))
      .filter(n => n.endsWith('.eml'))
      .map(n => n.slice(0, -'.eml'.length));
    const rawIds = new Set(raw);
    for (const id of raw) {
      if (known.has(id)) continue;
      // A raw file without a state anywhere is the rest of a removal cut short (a delivery
      // or a purge drops the state first) or of an inject that never said "queued as": a
      // parking writes the state on its claim before it moves the raw file here.
      await rm(this.messagePath(id), { force: true });
      report.orphans++;
    }
    for (const id of waiting) {
      if (rawIds.has(id)) continue;
      const entry = await this.read('queue', id);
      if (!entry) continue;
      entry.dead = {
        reason: 'raw message missing from the spool',
        at: new Date(now).toISOString(),
      };
      await this.move(entry, 'queue', 'dead');
      report.missingRaw++;
    }
    return report;
  }
}

/** unlink, where a file already gone is fine (rm would lstat first: one syscall more). */
async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** A fresh message's entry from its header line; null when the file or its header is not whole. */
async function readFresh(path: string): Promise<QueueEntry | null> {
  try {
    return await readSpoolFile(path);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** An entry's state file, or null when there is none. */
async function readEntry(path: string): Promise<QueueEntry | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as QueueEntry;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}
