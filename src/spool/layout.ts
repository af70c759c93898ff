// The spool's folders and paths (tmp/, msg/, signal/, queue/, active[-n]/, dead/, held/), and
// the two durable single-file writes every other piece of the spool builds on.
import { readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  GroupCommit,
  privateDir,
  writeFileAtomic,
  writeFileDurable,
} from '../lib/durable-fs.js';
import { segmentsOf } from './journal-format.js';
import type { QueueEntry } from './queue-entry.js';
import { readSpoolFile } from './spool-file.js';

/**
 * Where an entry's state file lives: waiting, claimed by a worker, dead, or held (a route's
 * policy held it; never delivered from there, only replayed, purged or expired).
 */
export type EntryState = 'queue' | 'active' | 'dead' | 'held';

export const STATES: readonly EntryState[] = [
  'queue',
  'active',
  'dead',
  'held',
];

/** The states a fresh message is parked into, and a claimed one filed into by an attempt. */
export type ParkState = 'queue' | 'dead' | 'held';

/** The states only an operator's command (or held/'s expiry) takes entries out of. */
export function isFinal(state: EntryState): state is 'dead' | 'held' {
  return state === 'dead' || state === 'held';
}

/**
 * The folders of one spool as one process sees them: which claim folder is its own, where each
 * file of an entry lives, and the folder fsyncs shared by the commits of the moment.
 */
export class SpoolLayout {
  readonly tmpDir: string;
  readonly msgDir: string;
  /** fsyncs folders, one round shared by every caller waiting (GroupCommit) */
  readonly dirSyncer: GroupCommit;

  /**
   * @param claimDir - this process's claim folder: `active`, or `active-<n>` for cluster slot n
   * @param dirSync - fsyncs a folder (a test can make it fail)
   */
  constructor(
    readonly dir: string,
    readonly claimDir: string,
    dirSync: (dir: string) => Promise<void>,
  ) {
    this.dirSyncer = new GroupCommit(dirSync);
    this.tmpDir = join(dir, 'tmp');
    this.msgDir = join(dir, 'msg');
  }

  /**
   * Creates the folders, the spool's own included, owner-only (0700); safe to call on an
   * existing spool, whose folders with a looser mode (made by an older version, or by hand)
   * are tightened: the files in them are then out of others' reach whatever their own mode.
   */
  async init(): Promise<void> {
    const subs = ['tmp', 'msg', 'signal', ...STATES, this.claimDir];
    // the spool's own folder first: mkdir's mode applies only to the folders it creates
    for (const dir of [this.dir, ...subs.map(sub => join(this.dir, sub))]) {
      await privateDir(dir);
    }
    // the others (a cluster's claim folders, dedupe/, dry-run/), made by an older version
    const entries = await readdir(this.dir, { withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isDirectory() || subs.includes(entry.name)) continue;
      await privateDir(join(this.dir, entry.name));
    }
  }

  /** Every claim folder of the spool: `active` and the cluster workers' `active-<n>`. */
  async claimFolders(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter(n => /^active(-\d+)?$/.test(n)).sort();
  }

  /** Where the raw message of a new id is written while it is received. */
  tmpMessagePath(id: string): string {
    return join(this.tmpDir, `${id}.eml`);
  }

  /** The raw message of a spooled entry. */
  messagePath(id: string): string {
    return join(this.msgDir, `${id}.eml`);
  }

  /** An entry's state file in `state` (claims: this process's claim folder). */
  statePath(state: EntryState, id: string): string {
    return join(
      this.dir,
      state === 'active' ? this.claimDir : state,
      `${id}.json`,
    );
  }

  /** A unique temporary name for an entry's state, in tmp/. */
  tmpStatePath(id: string): string {
    return join(this.tmpDir, `${id}.${process.pid}.${Date.now()}.json`);
  }

  /** A fresh message's one file (header line, then raw bytes) in a claim folder. */
  freshPath(id: string, folder = this.claimDir): string {
    return join(this.dir, folder, `${id}.eml`);
  }

  /** The journal segments of a claim folder, oldest first, as paths. */
  async segments(folder: string): Promise<string[]> {
    const dir = join(this.dir, folder);
    const names = await readdir(dir).catch((): string[] => []);
    return segmentsOf(dir, names.sort());
  }

  /**
   * Writes an entry's state to `target` atomically (tmp/, fsync, rename over). On failure the
   * old state stays in place and no half-done copy is left in tmp/.
   */
  async writeState(target: string, entry: QueueEntry): Promise<void> {
    const tmp = this.tmpStatePath(entry.id);
    try {
      await writeFileAtomic(tmp, target, JSON.stringify(entry));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Writes a message's raw bytes to msg/<id>.eml durably: fsynced, renamed, and msg/ fsynced
   * unless the caller does that for several (`syncFolder` false).
   */
  async writeRaw(id: string, raw: Buffer, syncFolder = true): Promise<void> {
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
}

/** unlink, where a file already gone is fine (rm would lstat first: one syscall more). */
export async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** A fresh message's entry from its header line; null when the file or its header is not whole. */
export async function readFresh(path: string): Promise<QueueEntry | null> {
  try {
    return await readSpoolFile(path);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** An entry's state file, or null when there is none. */
export async function readEntry(path: string): Promise<QueueEntry | null> {
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
