// Crash recovery at start: temporary files dropped, claims and journal segments left by dead
// processes put back in queue/, raw files without a state removed, states without one to dead/.
// held/ is left as it is: its entries are never delivered, only replayed, purged or expired.
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FreshMessages } from './fresh.js';
import { readSegment } from './journal-format.js';
import {
  isNotFound,
  readEntry,
  readFresh,
  type SpoolLayout,
} from './layout.js';
import { withoutPosition, type QueueEntry } from './queue-entry.js';
import { parseSpoolHeader } from './spool-file.js';
import { ids, move, read } from './states.js';

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
 * Mends the spool after a crash; run once at start, before any worker. Temporary files go
 * (their clients never heard 250), claimed entries are made due again, raw files without a
 * state are removed, and states without a raw file are moved to dead/ for the operator.
 * Journal segments kept as damaged (see requeueClaims) are added to `damaged`.
 */
export async function recover(
  layout: SpoolLayout,
  fresh: FreshMessages,
  now: number,
  damaged: string[],
): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    removedTmp: 0,
    requeued: 0,
    orphans: 0,
    missingRaw: 0,
    damagedSegments: 0,
  };
  for (const name of await readdir(layout.tmpDir)) {
    await rm(join(layout.tmpDir, name), { force: true });
    report.removedTmp++;
  }
  // the free pools of versions before the journal: files kept for reuse, never mail
  await rm(join(layout.dir, 'free'), { recursive: true, force: true });
  report.requeued = await requeueClaims(
    layout,
    fresh,
    await layout.claimFolders(),
    damaged,
  );
  report.damagedSegments = damaged.length;
  const waiting = new Set(await ids(layout, 'queue'));
  const known = new Set([
    ...waiting,
    ...(await ids(layout, 'dead')),
    ...(await ids(layout, 'held')),
  ]);
  const raw = (await readdir(layout.msgDir))
    .filter(n => n.endsWith('.eml'))
    .map(n => n.slice(0, -'.eml'.length));
  const rawIds = new Set(raw);
  for (const id of raw) {
    if (known.has(id)) continue;
    // the rest of a removal or inject cut short, never a parking (docs/spool-internals.md)
    await rm(layout.messagePath(id), { force: true });
    report.orphans++;
  }
  for (const id of waiting) {
    if (rawIds.has(id)) continue;
    const entry = await read(layout, 'queue', id);
    if (!entry) continue;
    entry.dead = {
      reason: 'raw message missing from the spool',
      at: new Date(now).toISOString(),
    };
    await move(layout, entry, 'queue', 'dead');
    report.missingRaw++;
  }
  return report;
}

/**
 * Takes back the claims left in claim folders (by a process that died): each goes back to
 * queue/, or on to dead/ or held/ when its move there was cut short; a fresh message is parked in
 * queue/ with the state of its header line; journal segments kept as damaged are added to
 * `damaged`. Returns how many.
 */
export async function requeueClaims(
  layout: SpoolLayout,
  fresh: FreshMessages,
  folders: string[],
  damaged: string[],
): Promise<number> {
  const waiting = new Set(await ids(layout, 'queue'));
  // claimed by any process: a journal record of such a message was parked already
  const claimed = await claimedIds(layout);
  let count = 0;
  for (const folder of folders) {
    count += await requeueJournal(
      layout,
      fresh,
      folder,
      { waiting, claimed },
      damaged,
    );
    const names = await readdir(join(layout.dir, folder)).catch(() => []);
    const states = new Set(
      names.filter(n => n.endsWith('.json')).map(n => n.slice(0, -5)),
    );
    for (const name of names.filter(n => n.endsWith('.eml'))) {
      const id = name.slice(0, -'.eml'.length);
      if (states.has(id)) {
        // its parking was cut short after the state was written: the raw file goes on
        await fresh.adoptRaw(id, folder);
        continue;
      }
      const entry = await readFresh(join(layout.dir, folder, name));
      if (entry && entry.id !== id) {
        // another message's bytes under this name, never answered 250 (docs/spool-internals.md)
        await rm(join(layout.dir, folder, name), { force: true });
      } else if (entry) {
        await fresh.park(entry, 'queue', folder);
        waiting.add(id);
      } else {
        // no whole header line: never committed (commitFresh renames a complete file)
        await rm(join(layout.dir, folder, name), { force: true });
      }
      count++;
    }
    for (const id of states) {
      const path = join(layout.dir, folder, `${id}.json`);
      const state = await readEntry(path);
      if (state?.dead || state?.held) {
        // its move to dead/ or held/ was cut short: finish it
        await rename(path, layout.statePath(state.dead ? 'dead' : 'held', id));
      } else if (waiting.has(id)) {
        await rm(path, { force: true });
      } else {
        await rename(path, layout.statePath('queue', id));
        waiting.add(id);
      }
      count++;
    }
  }
  return count;
}

/** The ids with a state in any claim folder, this process's or another's. */
async function claimedIds(layout: SpoolLayout): Promise<Set<string>> {
  const claimed = new Set<string>();
  for (const folder of await layout.claimFolders()) {
    for (const name of await readdir(join(layout.dir, folder)).catch(
      (): string[] => [],
    )) {
      if (name.endsWith('.json')) claimed.add(name.slice(0, -'.json'.length));
    }
  }
  return claimed;
}

/**
 * Parks the messages of a claim folder's journal segments (left by a process that died or
 * stopped) in queue/, durably, then deletes each segment, or keeps it as `<name>.damaged`
 * (listed in `damaged`) when whole records followed bytes that were not. A message with a state
 * in queue/, dead/, held/ or a claim folder is left where it is; this process's own segments are never
 * touched.
 */
async function requeueJournal(
  layout: SpoolLayout,
  fresh: FreshMessages,
  folder: string,
  known: { waiting: Set<string>; claimed: Set<string> },
  damaged: string[],
): Promise<number> {
  const { waiting, claimed } = known;
  let count = 0;
  /** the ids in dead/ and held/, read once there is a record to check */
  let final: Set<string> | undefined;
  for (const path of await layout.segments(folder)) {
    if (fresh.ownsSegment(path)) continue;
    // a segment deleted since the listing (by a journal of this process that closed before
    // its deletion was over) had every record done
    const contents = await readSegment(path).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!contents) continue;
    const parked: Array<{ id: string; state: QueueEntry }> = [];
    let unreadable = false;
    for (const { id, content } of contents.records) {
      final ??= new Set([
        ...(await ids(layout, 'dead')),
        ...(await ids(layout, 'held')),
      ]);
      const parsed = parseSpoolHeader(content);
      if (!parsed || parsed.entry.id !== id) {
        // whole by its checksum, yet no header line of its own: kept for the operator
        unreadable = true;
        continue;
      }
      if (waiting.has(id) || final.has(id) || claimed.has(id)) continue;
      // the raw files first, then their states: a state never names a raw file not on disk
      await layout.writeRaw(id, content.subarray(parsed.offset), false);
      parked.push({ id, state: withoutPosition(parsed.entry) });
    }
    if (parked.length > 0) {
      await layout.dirSyncer.sync(layout.msgDir);
      for (const { id, state } of parked) {
        await layout.writeState(layout.statePath('queue', id), state);
        waiting.add(id);
      }
      await layout.dirSyncer.sync(join(layout.dir, 'queue'));
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
