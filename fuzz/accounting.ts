// The books of a fuzz run: every 250 must end as exactly one of posted, held or dead, and nothing
// may be posted, held or dead that was not answered 250. Also the census of the spool it reads.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSegmentName, readSegment } from '../src/spool/journal-format.js';

/** A dead message as its state file gives it. */
export interface DeadEntry {
  reason: string;
  /** the API's status, when the API refused it */
  status?: number;
}

/** What the spool holds after a run, by queue id. */
export interface SpoolCensus {
  /** state files in queue/ (waiting for a retry) */
  waiting: string[];
  /** entries in a claim folder: state files, fresh files, journal records not marked done */
  claimed: string[];
  dead: Map<string, DeadEntry>;
  /** state files in held/, when that folder exists */
  held: string[];
  /** what the state file of each waiting or claimed entry says */
  states: Map<string, PendingState>;
}

/** A waiting or claimed entry's state, for a failure that names it. */
export interface PendingState {
  folder: string;
  attempts?: number;
  lastError?: string | null;
  nextAttemptAt?: number;
}

async function pendingState(
  spoolDir: string,
  folder: string,
  id: string,
): Promise<PendingState> {
  try {
    const text = await readFile(join(spoolDir, folder, `${id}.json`), 'utf8');
    const entry = JSON.parse(text) as Omit<PendingState, 'folder'>;
    return {
      folder,
      attempts: entry.attempts,
      lastError: entry.lastError,
      nextAttemptAt: entry.nextAttemptAt,
    };
  } catch {
    return { folder };
  }
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

const idOf = (name: string, ext: string) =>
  name.endsWith(ext) ? name.slice(0, -ext.length) : undefined;

/** Reads the spool's folders: what waits, what is claimed, what is dead or held. */
export async function spoolCensus(spoolDir: string): Promise<SpoolCensus> {
  const json = async (folder: string) =>
    (await names(join(spoolDir, folder)))
      .map(n => idOf(n, '.json'))
      .filter((id): id is string => id !== undefined);
  const claimed = new Set<string>();
  const states = new Map<string, PendingState>();
  for (const folder of await names(spoolDir)) {
    if (!/^active(-\d+)?$/.test(folder)) continue;
    for (const name of await names(join(spoolDir, folder))) {
      const id = idOf(name, '.json') ?? idOf(name, '.eml');
      if (id) {
        claimed.add(id);
        states.set(id, await pendingState(spoolDir, folder, id));
      }
      if (isSegmentName(name)) {
        const { records } = await readSegment(join(spoolDir, folder, name));
        for (const record of records) claimed.add(record.id);
      }
    }
  }
  const dead = new Map<string, DeadEntry>();
  for (const id of await json('dead')) {
    const text = await readFile(join(spoolDir, 'dead', `${id}.json`), 'utf8');
    const entry = JSON.parse(text) as { dead?: DeadEntry };
    dead.set(id, {
      reason: entry.dead?.reason ?? '(no reason recorded)',
      ...(entry.dead?.status === undefined
        ? {}
        : { status: entry.dead.status }),
    });
  }
  const waiting = await json('queue');
  for (const id of waiting) {
    states.set(id, await pendingState(spoolDir, 'queue', id));
  }
  return {
    waiting,
    claimed: [...claimed].sort(),
    dead,
    held: await json('held'),
    states,
  };
}

/** What the books are made from. */
export interface Ledger {
  /** the queue id of every 250 (a 250 without one is a failure of its own) */
  accepted: readonly string[];
  /** queue ids the daemon logged "message delivered" for */
  delivered: ReadonlySet<string>;
  /** POSTs the stand-in answered 2xx */
  posted: number;
  /**
   * transactions whose final reply never came (each a failure already): the daemon may have
   * taken them, so as many outcomes without a 250 are not counted against the books
   */
  unanswered?: number;
  census: SpoolCensus;
}

/** The books: the counts, and every id that does not add up. */
export interface Accounting {
  accepted: number;
  posted: number;
  held: number;
  dead: number;
  /** accepted === posted + held + dead, and every id accounted for exactly once */
  balanced: boolean;
  /** answered 250, then neither posted, held nor dead */
  lost: string[];
  /** posted (logged), held or dead, but never answered 250 */
  unknown: string[];
  /** more than one outcome (e.g. delivered and dead) */
  twice: string[];
  /** still waiting or claimed when the run ended */
  stuck: string[];
  /** 250 replies with the same queue id */
  repeated: string[];
  /** what does not add up, one line each */
  problems: string[];
}

export function account(ledger: Ledger): Accounting {
  const { census } = ledger;
  const accepted = new Set(ledger.accepted);
  const repeated = ledger.accepted.filter(
    (id, i) => ledger.accepted.indexOf(id) !== i,
  );
  const outcomes = new Map<string, number>();
  for (const set of [
    ledger.delivered,
    new Set(census.dead.keys()),
    new Set(census.held),
  ]) {
    for (const id of set) outcomes.set(id, (outcomes.get(id) ?? 0) + 1);
  }
  const lost = [...accepted].filter(id => !outcomes.has(id));
  const unknown = [...outcomes.keys()].filter(id => !accepted.has(id));
  const twice = [...outcomes].filter(([, n]) => n > 1).map(([id]) => id);
  const stuck = [...new Set([...census.waiting, ...census.claimed])];
  const result = {
    accepted: ledger.accepted.length,
    posted: ledger.posted,
    held: census.held.length,
    dead: census.dead.size,
  };
  const problems: string[] = [];
  const outcomesTotal = result.posted + result.held + result.dead;
  const slack = Math.min(ledger.unanswered ?? 0, unknown.length);
  if (
    outcomesTotal < result.accepted ||
    outcomesTotal > result.accepted + slack
  ) {
    problems.push(
      `${result.accepted} answered 250, but ${result.posted} posted + ` +
        `${result.held} held + ${result.dead} dead = ` +
        `${result.posted + result.held + result.dead}`,
    );
  }
  if (ledger.posted !== ledger.delivered.size) {
    problems.push(
      `the API took ${ledger.posted} posts, the daemon logged ${ledger.delivered.size} delivered`,
    );
  }
  const list = (ids: string[]) =>
    ids.slice(0, 20).join(', ') + (ids.length > 20 ? ', ...' : '');
  if (lost.length) {
    problems.push(
      `${lost.length} answered 250 but never posted, held or dead: ${list(lost)}`,
    );
  }
  if (unknown.length > slack) {
    problems.push(
      `${unknown.length} posted, held or dead without a 250: ${list(unknown)}`,
    );
  }
  if (twice.length) {
    problems.push(`${twice.length} with more than one outcome: ${list(twice)}`);
  }
  if (stuck.length) {
    problems.push(
      `${stuck.length} still in queue/ or a claim folder: ${list(stuck)}`,
    );
  }
  if (repeated.length) {
    problems.push(
      `${repeated.length} queue ids answered 250 twice: ${list(repeated)}`,
    );
  }
  return {
    ...result,
    balanced: problems.length === 0,
    lost,
    unknown,
    twice,
    stuck,
    repeated,
    problems,
  };
}
