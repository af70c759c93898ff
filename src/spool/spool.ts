// The durable queue on disk: raw bytes in msg/, state in queue/ (waiting), active/ (claimed), dead/.
import {
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { DirSyncer, writeFileAtomic, writeFileDurable } from './durable-fs.js';
import type { QueueEntry } from './queue-entry.js';

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
  private readonly dirSyncer = new DirSyncer();

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
   * Makes a received message durable: its state file is fsynced, the raw file (already fsynced
   * by the receiver) and the state are renamed into place and both folders fsynced. Only after
   * this may the client hear 250. `into: 'active'` keeps it claimed for the caller (hybrid mode).
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
        this.dirSyncer.sync(join(this.dir, into)),
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
      if (folder === this.claimDir) continue;
      const other = await readEntry(join(this.dir, folder, `${id}.json`));
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
    const tmp = this.tmpStatePath(entry.id);
    const target = this.statePath(inPlace ? from : to, entry.id);
    try {
      await writeFileAtomic(tmp, target, JSON.stringify(entry));
    } catch (err) {
      // the old state stays in place; no half-done copy is left in tmp/
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    if (!from || from === to) return;
    if (inPlace) await rename(target, this.statePath(to, entry.id));
    else await unlinkIfPresent(this.statePath(from, entry.id));
  }

  /**
   * Hands a claimed entry back to queue/ (active/ -> queue/) after an attempt that could not be
   * filed. A state already written to queue/ is newer and is kept. False when nothing was claimed.
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
      const names = await readdir(join(this.dir, folder)).catch(() => []);
      for (const n of names) if (n.endsWith('.json')) ids.push(n.slice(0, -5));
    }
    return ids.sort();
  }

  /**
   * Takes back the claims left in claim folders (by a process that died): each goes back to
   * queue/, or on to dead/ when its move there was cut short. Returns how many.
   */
  async requeueClaims(folders: string[] = [this.claimDir]): Promise<number> {
    const waiting = new Set(await this.ids('queue'));
    let count = 0;
    for (const folder of folders) {
      const names = await readdir(join(this.dir, folder)).catch(() => []);
      for (const name of names.filter(n => n.endsWith('.json'))) {
        const id = name.slice(0, -5);
        const path = join(this.dir, folder, name);
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
    report.requeued = await this.requeueClaims(await this.claimFolders());
    const waiting = new Set(await this.ids('queue'));
    const known = new Set([...waiting, ...(await this.ids('dead'))]);
    const raw = (await readdir(this.msgDir))
      .filter(n => n.endsWith('.eml'))
      .map(n => n.slice(0, -'.eml'.length));
    const rawIds = new Set(raw);
    for (const id of raw) {
      if (known.has(id)) continue;
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
