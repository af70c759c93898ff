// The durable queue on disk: a message just accepted is one file (state line, then raw bytes) in
// its accepting process's claim folder; one that waits has its raw bytes in msg/ and its state
// in queue/ (waiting), active/ (claimed) or dead/.
import {
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { existsSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  DirSyncer,
  exists,
  writeFileAtomic,
  writeFileDurable,
} from './durable-fs.js';
import type { QueueEntry } from './queue-entry.js';
import { readSpoolFile } from './spool-file.js';

/** A file of the free pool: a delivered message's file, kept to be written over by a new one. */
export interface FreeFile {
  path: string;
  /** its size in bytes, as it was left */
  size: number;
}

/**
 * How many delivered messages' files a process keeps for reuse. Creating and deleting a file
 * per message costs the file system an inode allocation and a release each; on ext4 without a
 * journal an allocation also scans past every inode freed in the last minutes, which at
 * hundreds of messages a second cost more CPU than the rest of a delivery.
 */
export const FREE_POOL_LIMIT = 1024;
/**
 * The most bytes the free pool of a process holds on disk; a file over FREE_FILE_MAX_BYTES is
 * never kept (the messages written over free files are small ones, up to 128 KiB).
 */
export const FREE_POOL_BYTES = 16 * 1024 * 1024;
export const FREE_FILE_MAX_BYTES = 256 * 1024;

/** Where an entry's state file lives: waiting, claimed by a worker, or dead. */
export type EntryState = 'queue' | 'active' | 'dead';

const STATES: readonly EntryState[] = ['queue', 'active', 'dead'];

/** What recover() found and mended at start. */
export interface RecoveryReport {
  removedTmp: number;
  requeued: number;
  orphans: number;
  missingRaw: number;
}

/**
 * The spool. Every transition is a rename within one file system, so a crash at any point leaves
 * either the old state or the new one; claims are renames too, so two processes (the daemon and
 * a `queue` command) never both own an entry.
 */
export class Spool {
  readonly tmpDir: string;
  readonly msgDir: string;
  /**
   * delivered messages' files to be written over (see FREE_POOL_LIMIT): `free/<claim folder>/`,
   * one per process like its claim folder, so the process that takes over a slot can empty it
   */
  readonly freeDir: string;
  private readonly dirSyncer = new DirSyncer();
  /** this process's free files; another process never takes them (their names are ids) */
  private readonly free: FreeFile[] = [];
  /** bytes of the free pool, those being moved into it included */
  private freeBytes = 0;
  /** files being moved into the free pool */
  private freeMoving = 0;
  /** files moved into free/, free once an fsync of the claim folder has made the move durable */
  private settling: FreeFile[] = [];

  /**
   * @param claimDir - where this process's claims live: `active`, or in a cluster `active-<n>`
   * for worker slot n, so the worker that replaces a dead one can take back its claims alone
   */
  constructor(
    readonly dir: string,
    private readonly claimDir = 'active',
  ) {
    this.tmpDir = join(dir, 'tmp');
    this.msgDir = join(dir, 'msg');
    this.freeDir = join(dir, 'free', claimDir);
  }

  /** Creates the folders; safe to call on an existing spool. */
  async init(): Promise<this> {
    for (const sub of [
      'tmp',
      'msg',
      'signal',
      join('free', this.claimDir),
      ...STATES,
      this.claimDir,
    ]) {
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
    const path = this.freshPath(id);
    // files moved from this folder into free/ before this fsync starts: it makes them free
    const settled = this.settling;
    this.settling = [];
    try {
      // synchronous: a metadata change, cheaper than a thread-pool round trip (durable-fs.ts)
      renameSync(tmpPath, path);
      await this.dirSyncer.sync(join(this.dir, this.claimDir));
      for (const file of settled) this.free.push(file);
    } catch (err) {
      this.settling.push(...settled);
      await Promise.allSettled([
        rm(tmpPath, { force: true }),
        rm(path, { force: true }),
      ]);
      throw err;
    }
  }

  /**
   * Turns a fresh message into a spooled one in `to` (queue/ or dead/) with the state `entry`:
   * the state is written into the claim folder first, then the raw file goes to msg/, then the
   * state to `to`. A crash at any step leaves files that requeueClaims() finishes moving.
   */
  async park(
    entry: QueueEntry,
    to: 'queue' | 'dead',
    folder = this.claimDir,
  ): Promise<void> {
    const claimed = join(this.dir, folder, `${entry.id}.json`);
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
    if (await exists(join(this.dir, this.claimDir, `${entry.id}.json`))) {
      await this.adoptRaw(entry.id, this.claimDir);
      await this.release(entry.id);
      return 'released';
    }
    await this.park({ ...entry, nextAttemptAt: at }, 'queue');
    return 'parked';
  }

  /** Moves a fresh message's file from a claim folder to msg/ (none there: moved already). */
  private async adoptRaw(id: string, folder: string): Promise<void> {
    try {
      await rename(this.freshPath(id, folder), this.messagePath(id));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** The file holding an entry's raw message: msg/, or a claim folder for a fresh one. */
  async locateRaw(id: string): Promise<string | null> {
    const candidates = [
      this.messagePath(id),
      ...(await this.claimFolders()).map(f => this.freshPath(id, f)),
    ];
    for (const path of candidates) {
      if (await exists(path)) return path;
    }
    return null;
  }

  /**
   * Removes a fresh message for good (delivered, or refused while its sender waited). Given its
   * file's size, the file goes to the free pool (renamed into free/) while the pool has room
   * (FREE_POOL_LIMIT files, FREE_POOL_BYTES), for a new message to be written over; otherwise it
   * is deleted.
   */
  async removeFresh(id: string, size?: number): Promise<void> {
    const path = this.freshPath(id);
    if (
      size !== undefined &&
      size <= FREE_FILE_MAX_BYTES &&
      this.free.length + this.settling.length + this.freeMoving <
        FREE_POOL_LIMIT &&
      this.freeBytes + size <= FREE_POOL_BYTES
    ) {
      const target = join(this.freeDir, id);
      // counted before the rename, so removals running at once cannot overfill the pool
      this.freeMoving++;
      this.freeBytes += size;
      try {
        renameSync(path, target);
        // not written over before the move is durable (else a power loss could bring back
        // <claim>/<id>.eml holding another message's bytes): the next fsync of the claim
        // folder that starts after this, a commit's, makes it free
        this.settling.push({ path: target, size });
        return;
      } catch (err) {
        this.freeBytes -= size;
        // gone already; but ENOENT also says the free folder is missing: then deleted below
        if (isNotFound(err) && !existsSync(path)) return;
        // the free folder is not usable: delete as before
      } finally {
        this.freeMoving--;
      }
    }
    await unlinkIfPresent(path);
  }

  /**
   * Empties this process's free folder (what its slot's last process left) and its pool: at
   * start, by the process that owns the slot, before it accepts anything.
   */
  async clearFree(): Promise<void> {
    this.free.length = 0;
    this.settling = [];
    this.freeBytes = 0;
    const names = await readdir(this.freeDir).catch((): string[] => []);
    for (const name of names) {
      await rm(join(this.freeDir, name), { force: true });
    }
  }

  /**
   * A file of the free pool for a new message to be written over (see receiveToFile), or
   * undefined when the pool is empty. It is the caller's from here: written and committed with
   * commitFresh, or deleted. What is left in free/ after a crash is junk; the next process of
   * the slot deletes it (recover() or clearFree()).
   */
  takeFree(): FreeFile | undefined {
    const file = this.free.pop();
    if (file) this.freeBytes -= file.size;
    return file;
  }

  /** Files this process keeps in its free folder: free, or still to be made durable there. */
  get freeFiles(): number {
    return this.free.length + this.settling.length;
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
    return null;
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
    return ids.sort();
  }

  /**
   * Takes back the claims left in claim folders (by a process that died): each goes back to
   * queue/, or on to dead/ when its move there was cut short; a fresh message is parked in
   * queue/ with the state of its header line. Returns how many.
   */
  async requeueClaims(folders: string[] = [this.claimDir]): Promise<number> {
    const waiting = new Set(await this.ids('queue'));
    let count = 0;
    for (const folder of folders) {
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

  /** Every entry in one state, oldest first; entries that vanish while read are skipped. */
  async list(state: EntryState): Promise<QueueEntry[]> {
    const entries: QueueEntry[] = [];
    for (const id of await this.ids(state)) {
      const entry = await this.read(state, id);
      if (entry) entries.push(entry);
    }
    return entries;
  }

  /**
   * Mends the spool after a crash; run once at start, before any worker. Temporary files go
   * (their clients never heard 250), claimed entries are made due again, raw files without a
   * state are removed, and states without a raw file are moved to dead/ for the operator.
   */
  async recover(now: number): Promise<RecoveryReport> {
    const report: RecoveryReport = {
      removedTmp: 0,
      requeued: 0,
      orphans: 0,
      missingRaw: 0,
    };
    for (const name of await readdir(this.tmpDir)) {
      await rm(join(this.tmpDir, name), { force: true });
      report.removedTmp++;
    }
    // the free pools of the last run (every slot's): files kept for reuse, or being written
    // over, never mail
    for (const slot of await readdir(join(this.dir, 'free')).catch(
      (): string[] => [],
    )) {
      if (slot !== this.claimDir) {
        await rm(join(this.dir, 'free', slot), {
          recursive: true,
          force: true,
        });
      }
    }
    await this.clearFree();
    report.requeued = await this.requeueClaims(await this.claimFolders());
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
