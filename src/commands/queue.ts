// `queue list|show|retry|dead|held|replay|purge`: the spool of a stopped or running daemon, by
// hand.
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import {
  releaseEntry,
  replayEntry,
  type QueueEntry,
} from '../spool/queue-entry.js';
import { isFinal, Spool, type EntryState } from '../spool/spool.js';

export interface QueueCommand {
  action: string;
  id?: string;
  all: boolean;
  json: boolean;
}

/** One line of `list` / `dead` / `held`, and the element of their `--json` arrays. */
export interface QueueSummary {
  id: string;
  messageId: string | null;
  from: string | null;
  recipients: string[];
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  /** dead and held entries: why */
  reason?: string;
}

/** The shape of a queue id (see newQueueId): letters and digits only. */
const MESSAGE_ID = /^[0-9A-Za-z]+$/;

/** Runs one queue action; resolves to the exit status (2 bad usage, 1 not found or busy). */
export async function runQueue(
  config: Config,
  command: QueueCommand,
): Promise<number> {
  const spool = await new Spool(resolve(config.spool.dir)).init();
  const now = Date.now();
  const { action, id } = command;
  const needsId =
    ['show', 'replay', 'purge'].includes(action) ||
    (action === 'retry' && !command.all);
  if (needsId && !id) return usage(`queue ${action} needs a message ID`);
  // ids become file names: "../x" would reach (and purge would delete) files outside the spool
  if (id !== undefined && !MESSAGE_ID.test(id)) {
    return usage(
      `not a message ID: "${id}" (letters and digits, as in queue list)`,
    );
  }
  switch (action) {
    case 'list':
      return print(await listStates(spool, ['active', 'queue']), command.json);
    case 'dead':
      return print(await listStates(spool, ['dead']), command.json);
    case 'held':
      return print(await listStates(spool, ['held']), command.json, 'held');
    case 'show':
      return show(spool, id!);
    case 'retry':
      return command.all ? retryAll(spool, now) : retry(spool, id!, now);
    case 'replay':
      return replay(spool, id!, now);
    case 'purge':
      return purge(spool, id!);
    default:
      return usage(
        `unknown queue action "${action}" (list, show, retry, dead, held, replay, purge)`,
      );
  }
}

function usage(message: string): number {
  process.stderr.write(`mailbridge: ${message}\n`);
  return 2;
}

function fail(message: string): number {
  process.stderr.write(`mailbridge: ${message}\n`);
  return 1;
}

async function listStates(
  spool: Spool,
  states: EntryState[],
): Promise<QueueSummary[]> {
  const all: QueueEntry[] = [];
  for (const state of states) all.push(...(await spool.list(state)));
  return all.sort((a, b) => a.id.localeCompare(b.id)).map(summarise);
}

/** The public summary of an entry (the contract's `--json` fields). */
export function summarise(entry: QueueEntry): QueueSummary {
  return {
    id: entry.id,
    messageId: entry.messageId,
    from: entry.envelope.mailFrom,
    recipients: entry.envelope.rcptTo,
    attempts: entry.attempts,
    nextAttemptAt:
      entry.dead || entry.held
        ? null
        : new Date(entry.nextAttemptAt).toISOString(),
    lastError: entry.lastError,
    ...(entry.dead ? { reason: entry.dead.reason } : {}),
    ...(entry.held && !entry.dead ? { reason: entry.held.reason } : {}),
  };
}

/** Prints rows; `final` stands where a row has no next attempt (dead or held). */
function print(rows: QueueSummary[], json: boolean, final = 'dead'): number {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  for (const row of rows) {
    const when = row.nextAttemptAt ?? final;
    const error = row.reason ?? row.lastError ?? '';
    process.stdout.write(
      `${row.id}  ${when}  attempts=${row.attempts}  ${row.from ?? '<>'} -> ${row.recipients.join(',')}  ${row.messageId ?? ''}  ${error}\n`,
    );
  }
  return 0;
}

async function show(spool: Spool, id: string): Promise<number> {
  const found = await spool.find(id);
  if (!found) return fail(`no message ${id} in the spool`);
  const out = {
    state: found.state,
    raw: await spool.locateRaw(id),
    ...found.entry,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}

async function retry(spool: Spool, id: string, now: number): Promise<number> {
  if (!(await makeDue(spool, id, now))) {
    return fail(await whyNot(spool, id, 'queue retry'));
  }
  process.stdout.write(`${id} due now\n`);
  return 0;
}

async function retryAll(spool: Spool, now: number): Promise<number> {
  let count = 0;
  for (const id of await spool.ids('queue')) {
    if (await makeDue(spool, id, now)) count++; // else claimed by the daemon meanwhile
  }
  process.stdout.write(`${count} messages due now\n`);
  return 0;
}

/**
 * Claims a waiting entry (queue/ -> active/, so the daemon cannot take it meanwhile), then
 * writes it back due now. The state is on disk at every step: a crash in between leaves it in
 * active/, which the daemon's recovery puts back in the queue.
 */
async function makeDue(
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

/**
 * Puts a dead or held message back in the queue, due now. A dead one's failed routes are
 * pending again (held ones stay held); a held one's held routes are pending and `released`:
 * the policy that held them lets them through, and the message is posted.
 */
async function replay(spool: Spool, id: string, now: number): Promise<number> {
  // read it, write the new state, only then drop the old one, so a failed write or a crash in
  // between cannot lose the message
  const dead = await spool.read('dead', id);
  if (dead) {
    await spool.move(replayEntry(dead, now), 'dead', 'queue');
    process.stdout.write(`${id} queued again\n`);
    return 0;
  }
  const held = await spool.read('held', id);
  if (!held) return fail(await whyNot(spool, id, 'queue replay'));
  await spool.move(releaseEntry(held, now), 'held', 'queue');
  // the daemon deletes held messages past delivery.heldRetentionMs: one that expired while
  // this replay wrote its state has no raw message left, and is taken back out
  if (!(await spool.locateRaw(id))) {
    await spool.take(id, 'queue');
    return fail(
      `${id} has no raw message left (expired by delivery.heldRetentionMs meanwhile?); not queued`,
    );
  }
  process.stdout.write(`${id} released and queued again\n`);
  return 0;
}

async function purge(spool: Spool, id: string): Promise<number> {
  for (const state of ['queue', 'dead', 'held'] as const) {
    if (await spool.take(id, state)) {
      await spool.remove(id, null);
      process.stdout.write(`${id} purged\n`);
      return 0;
    }
  }
  return fail(await whyNot(spool, id, 'queue purge'));
}

/** Explains why an entry could not be taken: it is being delivered, elsewhere, or unknown. */
async function whyNot(spool: Spool, id: string, what: string): Promise<string> {
  const found = await spool.find(id);
  if (!found) return `no message ${id} in the spool`;
  if (found.state === 'active') {
    return `${id} is being delivered right now; try again`;
  }
  const hint = isFinal(found.state) ? 'use queue replay' : 'use queue retry';
  return `${what}: ${id} is in ${found.state}/ (${hint})`;
}
