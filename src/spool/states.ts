// The state machine of spooled entries: a state file in queue/ (waiting), a claim folder
// (claimed), dead/ or held/, moved between them by renames; and how the states are read and
// listed.
import { readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileDurable } from '../lib/durable-fs.js';
import {
  isFinal,
  isNotFound,
  readEntry,
  readFresh,
  STATES,
  unlinkIfPresent,
  type EntryState,
  type SpoolLayout,
} from './layout.js';
import { findJournaled, journaledEntries } from './lookups.js';
import type { QueueEntry } from './queue-entry.js';

/**
 * Spools a message as waiting (inject), claimed by this process with `into: 'active'`, or held
 * (`into: 'held'`: sync mode, a route's policy held it): the state is fsynced, raw and state
 * renamed into place, both folders fsynced.
 */
export async function commit(
  layout: SpoolLayout,
  entry: QueueEntry,
  tmpMessage: string,
  into: 'queue' | 'active' | 'held',
): Promise<void> {
  const tmpState = layout.tmpStatePath(entry.id);
  try {
    await writeFileDurable(tmpState, JSON.stringify(entry));
    await rename(tmpMessage, layout.messagePath(entry.id));
    await rename(tmpState, layout.statePath(into, entry.id));
    await Promise.all([
      layout.dirSyncer.sync(layout.msgDir),
      layout.dirSyncer.sync(dirname(layout.statePath(into, entry.id))),
    ]);
  } catch (err) {
    // every removal waited for; one failing hides neither the others nor the commit's error
    await Promise.allSettled([
      rm(tmpMessage, { force: true }),
      rm(tmpState, { force: true }),
      rm(layout.messagePath(entry.id), { force: true }),
      rm(layout.statePath(into, entry.id), { force: true }),
    ]);
    throw err;
  }
}

/** Claims a waiting entry (queue/ -> active/); null when someone else has it or it is gone. */
export async function claim(
  layout: SpoolLayout,
  id: string,
): Promise<QueueEntry | null> {
  try {
    await rename(layout.statePath('queue', id), layout.statePath('active', id));
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  return read(layout, 'active', id);
}

/** Takes an entry out of `from` for an operator's command (renamed into tmp/). */
export async function take(
  layout: SpoolLayout,
  id: string,
  from: EntryState,
): Promise<QueueEntry | null> {
  const held = layout.tmpStatePath(id);
  try {
    await rename(layout.statePath(from, id), held);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  const entry = JSON.parse(await readFile(held, 'utf8')) as QueueEntry;
  await unlink(held);
  return entry;
}

/** Reads an entry's state; null when there is none in that state (claims: any process's). */
export async function read(
  layout: SpoolLayout,
  state: EntryState,
  id: string,
): Promise<QueueEntry | null> {
  const entry = await readEntry(layout.statePath(state, id));
  if (entry || state !== 'active') return entry;
  for (const folder of await layout.claimFolders()) {
    const other =
      (folder === layout.claimDir
        ? null
        : await readEntry(join(layout.dir, folder, `${id}.json`))) ??
      (await readFresh(layout.freshPath(id, folder)));
    if (other) return other;
  }
  return (
    (await findJournaled(layout, id, await layout.claimFolders()))?.entry ??
    null
  );
}

/** Finds an entry in whichever state holds it. */
export async function find(
  layout: SpoolLayout,
  id: string,
): Promise<{ state: EntryState; entry: QueueEntry } | null> {
  for (const state of STATES) {
    const entry = await read(layout, state, id);
    if (entry) return { state, entry };
  }
  return null;
}

/**
 * Writes an entry's new state and moves it from `from` to `to`. Out of queue/ or active/, the
 * new state is written over the caller's own file, then that file renamed into `to`, so the
 * entry is never in two folders at once (docs/spool-internals.md, "Moving an entry").
 */
export async function move(
  layout: SpoolLayout,
  entry: QueueEntry,
  from: EntryState | null,
  to: EntryState,
): Promise<void> {
  // out of dead/ or held/ (an operator's command): new state first, old one dropped after
  const inPlace = from !== null && !isFinal(from);
  const target = layout.statePath(inPlace ? from : to, entry.id);
  await layout.writeState(target, entry);
  if (!from || from === to) return;
  if (inPlace) await rename(target, layout.statePath(to, entry.id));
  else await unlinkIfPresent(layout.statePath(from, entry.id));
}

/**
 * Hands a claimed entry back to queue/ (active/ -> queue/) after an attempt that could not be
 * filed. A state already written to queue/ is newer and is kept. False when nothing was claimed.
 * A dead or held state (its move to dead/ or held/ failed) goes to queue/ too, to be filed again
 * with its log line.
 */
export async function release(
  layout: SpoolLayout,
  id: string,
): Promise<boolean> {
  try {
    if (await read(layout, 'queue', id)) {
      await unlink(layout.statePath('active', id));
    } else {
      await rename(
        layout.statePath('active', id),
        layout.statePath('queue', id),
      );
    }
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Removes an entry and its raw message for good (delivered, refused, or purged). */
export async function remove(
  layout: SpoolLayout,
  id: string,
  from: EntryState | null,
): Promise<void> {
  if (from) await unlinkIfPresent(layout.statePath(from, id));
  await unlinkIfPresent(layout.messagePath(id));
}

/** The ids in one state, oldest first (ids sort by time). */
export async function ids(
  layout: SpoolLayout,
  state: EntryState,
): Promise<string[]> {
  const folders = state === 'active' ? await layout.claimFolders() : [state];
  const found: string[] = [];
  for (const folder of folders) {
    const names = new Set(
      await readdir(join(layout.dir, folder)).catch((): string[] => []),
    );
    for (const n of names) {
      if (n.endsWith('.json')) found.push(n.slice(0, -'.json'.length));
      // a fresh message (raw and state in one file), unless its parking was cut short
      else if (n.endsWith('.eml') && !names.has(`${n.slice(0, -4)}.json`)) {
        found.push(n.slice(0, -'.eml'.length));
      }
    }
  }
  const journaled =
    state === 'active'
      ? [...(await journaledEntries(layout, folders)).keys()]
      : [];
  if (journaled.length > 0) {
    // a record whose message has a state elsewhere was parked, its done mark still to come
    // (or lost): it is listed where its state is, once
    const elsewhere = new Set(found);
    for (const other of ['queue', 'dead', 'held'] as const) {
      for (const id of await ids(layout, other)) elsewhere.add(id);
    }
    for (const id of journaled) if (!elsewhere.has(id)) found.push(id);
  }
  return [...new Set(found)].sort();
}

/** Every entry in one state, oldest first; entries that vanish while read are skipped. */
export async function list(
  layout: SpoolLayout,
  state: EntryState,
): Promise<QueueEntry[]> {
  const entries: QueueEntry[] = [];
  // the journals' messages are read in one pass, not a pass over every segment per message
  const journaled =
    state === 'active'
      ? await journaledEntries(layout, await layout.claimFolders())
      : new Map<string, { entry: QueueEntry }>();
  for (const id of await ids(layout, state)) {
    const entry = journaled.get(id)?.entry ?? (await read(layout, state, id));
    if (entry) entries.push(entry);
  }
  return entries;
}
