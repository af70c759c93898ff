// The queue's moves by hand, one message at a time: retry (due now), replay (dead or held back
// to the queue) and purge. Safe beside a running daemon: every move takes the entry by a rename
// first, so the daemon and the command never both own it.
import { releaseEntry, replayEntry } from '../spool/queue-entry.js';
import { isFinal, type EntryState, type Spool } from '../spool/spool.js';

/**
 * Claims a waiting entry (queue/ -> active/, so the daemon cannot take it meanwhile), then
 * writes it back due now and signals the daemon. The state is on disk at every step: a crash in
 * between leaves it in active/, which the daemon's recovery puts back in the queue. False when
 * it was not waiting (claimed by the daemon meanwhile, or gone).
 */
export async function makeDue(
  spool: Spool,
  id: string,
  now: number,
): Promise<boolean> {
  const entry = await spool.claim(id);
  if (!entry) return false;
  await spool.move({ ...entry, nextAttemptAt: now }, 'active', 'queue');
  await spool.signal(id); // a running daemon re-reads only new and signalled entries
  return true;
}

/** What a replay did: queued again, released from its hold and queued, or nothing. */
export type ReplayResult = 'queued' | 'released' | 'expired' | 'absent';

/**
 * Puts a dead or held message back in the queue, due now. A dead one's failed routes are
 * pending again (held ones stay held); a held one's held routes are pending and `released`:
 * the policy that held them lets them through, and the message is posted.
 */
export async function replayOne(
  spool: Spool,
  id: string,
  now: number,
): Promise<ReplayResult> {
  // read it, write the new state, only then drop the old one, so a failed write or a crash in
  // between cannot lose the message
  const dead = await spool.read('dead', id);
  if (dead) {
    await spool.move(replayEntry(dead, now), 'dead', 'queue');
    return 'queued';
  }
  const held = await spool.read('held', id);
  if (!held) return 'absent';
  await spool.move(releaseEntry(held, now), 'held', 'queue');
  // the daemon deletes held messages past delivery.heldRetentionMs: one that expired while
  // this replay wrote its state has no raw message left, and is taken back out
  if (!(await spool.locateRaw(id))) {
    await spool.take(id, 'queue');
    return 'expired';
  }
  return 'released';
}

/** Deletes a message in `from`; false when it is not there (taken meanwhile, or never). */
export async function purgeOne(
  spool: Spool,
  id: string,
  from: EntryState,
): Promise<boolean> {
  if (!(await spool.take(id, from))) return false;
  await spool.remove(id, null);
  return true;
}

/** `queue retry ID`. */
export async function retry(
  spool: Spool,
  id: string,
  now: number,
): Promise<number> {
  if (!(await makeDue(spool, id, now))) {
    return fail(await whyNot(spool, id, 'queue retry'));
  }
  process.stdout.write(`${id} due now\n`);
  return 0;
}

/** `queue replay ID`. */
export async function replay(
  spool: Spool,
  id: string,
  now: number,
): Promise<number> {
  const result = await replayOne(spool, id, now);
  switch (result) {
    case 'queued':
      process.stdout.write(`${id} queued again\n`);
      return 0;
    case 'released':
      process.stdout.write(`${id} released and queued again\n`);
      return 0;
    case 'expired':
      return fail(
        `${id} has no raw message left (expired by delivery.heldRetentionMs meanwhile?); not queued`,
      );
    case 'absent':
      return fail(await whyNot(spool, id, 'queue replay'));
  }
}

/** `queue purge ID`: waiting, dead or held. */
export async function purge(spool: Spool, id: string): Promise<number> {
  for (const state of ['queue', 'dead', 'held'] as const) {
    if (await purgeOne(spool, id, state)) {
      process.stdout.write(`${id} purged\n`);
      return 0;
    }
  }
  return fail(await whyNot(spool, id, 'queue purge'));
}

/** Explains why an entry could not be taken: it is being delivered, elsewhere, or unknown. */
export async function whyNot(
  spool: Spool,
  id: string,
  what: string,
): Promise<string> {
  const found = await spool.find(id);
  if (!found) return `no message ${id} in the spool`;
  if (found.state === 'active') {
    return `${id} is being delivered right now; try again`;
  }
  const hint = isFinal(found.state) ? 'use queue replay' : 'use queue retry';
  return `${what}: ${id} is in ${found.state}/ (${hint})`;
}

function fail(message: string): number {
  process.stderr.write(`mailbridge: ${message}\n`);
  return 1;
}
