// `queue retry` and `queue purge` over many messages: every waiting (--all), dead (--dead) or
// held (--held) one, or all of a mailbox or recipient domain (--mailbox, --domain), counted.
import type { EntryState, Spool } from '../spool/spool.js';
import { makeDue, purgeOne, replayOne } from './queue-actions.js';
import { readStates } from './queue-list.js';
import { ownedByOthers, type EntryFilter } from './queue-select.js';
import { plural } from './queue-table.js';

/** The states a bulk command picked, and the filter over them. */
export interface Selection {
  /** waiting (`--all`) */
  waiting: boolean;
  dead: boolean;
  held: boolean;
  filter: EntryFilter;
}

/**
 * `queue retry --all | --dead | --mailbox M`: waiting messages due now (claimed, rewritten,
 * signalled: makeDue), dead ones queued again (replayOne). One being delivered is left alone.
 */
export async function retryMany(
  spool: Spool,
  selection: Selection,
  now: number,
): Promise<number> {
  const out: string[] = [];
  if (selection.waiting) {
    let due = 0;
    const waiting = await readStates(spool, ['queue'], selection.filter);
    for (const { entry } of waiting) {
      if (await makeDue(spool, entry.id, now)) due++;
    }
    out.push(`${plural(due, 'message')} due now`);
    // those the daemon claimed while this ran are among them
    const busy = await busyCount(spool, selection);
    if (busy) out.push(`${busy} being delivered right now, left alone`);
  }
  if (selection.dead) {
    let queued = 0;
    for (const { entry } of await readStates(
      spool,
      ['dead'],
      selection.filter,
    )) {
      if ((await replayOne(spool, entry.id, now)) === 'queued') queued++;
    }
    out.push(`${plural(queued, 'dead message')} queued again`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

/**
 * `queue purge --all | --dead | --held | --mailbox M`: each message deleted, its ID printed.
 * With a filter, a message also owed to another mailbox or domain is kept: purging it would
 * drop that one's mail too.
 */
export async function purgeMany(
  spool: Spool,
  selection: Selection,
): Promise<number> {
  const states: EntryState[] = [];
  if (selection.waiting) states.push('queue');
  if (selection.dead) states.push('dead');
  if (selection.held) states.push('held');
  let purged = 0;
  let gone = 0;
  const kept: string[] = [];
  for (const { state, entry } of await readStates(
    spool,
    states,
    selection.filter,
  )) {
    if (ownedByOthers(entry, selection.filter)) {
      kept.push(entry.id);
    } else if (await purgeOne(spool, entry.id, state)) {
      process.stdout.write(`${entry.id} purged\n`);
      purged++;
    } else if (state !== 'queue') {
      gone++; // expired, or purged by someone else, meanwhile
    } // a waiting one claimed by the daemon meanwhile is counted as being delivered below
  }
  const out = [`${plural(purged, 'message')} purged`];
  if (kept.length) {
    out.push(
      `${kept.length} kept, also owed to another mailbox or domain (purge by ID): ${kept.join(' ')}`,
    );
  }
  if (gone) out.push(`${gone} taken by someone else meanwhile, left alone`);
  const busy = selection.waiting ? await busyCount(spool, selection) : 0;
  if (busy) out.push(`${busy} being delivered right now, left alone`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

/** Messages of the selection claimed for delivery right now (not to be touched). */
async function busyCount(spool: Spool, selection: Selection): Promise<number> {
  return (await readStates(spool, ['active'], selection.filter)).length;
}
