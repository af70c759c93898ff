// Tools for queue-mode tests: a hand-driven clock, spool listings, scan events, hand-made entries.
import { EventEmitter, once } from 'node:events';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RouteConfig } from '../../src/config/schema.js';
import { decide, type RouteResult } from '../../src/pipeline/decide.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { isSegmentName } from '../../src/spool/journal.js';
import { newQueueEntry, type QueueEntry } from '../../src/spool/queue-entry.js';
import { Spool, type EntryState } from '../../src/spool/spool.js';
import { liveRecords } from './wait-for.js';

/** A clock that stands still until the test moves it (pass `clock.now` as the daemon's `now`). */
export class ManualClock {
  constructor(private time: number) {}

  readonly now = (): number => this.time;

  /** Moves the clock to `time` (never backwards). */
  set(time: number): void {
    this.time = Math.max(this.time, time);
  }

  advance(ms: number): void {
    this.time += ms;
  }
}

/** A `random` that returns the given values in turn, the last one forever after. */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
}

/** The file names in each folder of a spool. */
export interface SpoolListing {
  tmp: string[];
  msg: string[];
  queue: string[];
  active: string[];
  dead: string[];
}

/**
 * Lists tmp/, msg/, queue/, active/ and dead/ (a missing folder lists as empty). A journal
 * segment of active/ is listed only while it holds a message not done: the daemon keeps
 * appending to its current segment, empty or not.
 */
export async function listSpool(dir: string): Promise<SpoolListing> {
  const names = (sub: string) =>
    readdir(join(dir, sub)).catch(() => [] as string[]);
  const active: string[] = [];
  for (const name of await names('active')) {
    if (
      !isSegmentName(name) ||
      (await liveRecords(join(dir, 'active', name))).length > 0
    ) {
      active.push(name);
    }
  }
  return {
    tmp: await names('tmp'),
    msg: await names('msg'),
    queue: await names('queue'),
    active,
    dead: await names('dead'),
  };
}

/** Reads an entry's state file as the daemon wrote it; null when there is none. */
export async function readEntry(
  dir: string,
  state: EntryState,
  id: string,
): Promise<QueueEntry | null> {
  try {
    return JSON.parse(
      await readFile(join(dir, state, `${id}.json`), 'utf8'),
    ) as QueueEntry;
  } catch {
    return null;
  }
}

/**
 * Reports each rescan of the spool by the running daemon's queue runner. It watches the
 * runner's taking of `queue retry` signals, which only a scan does (once, after listing
 * queue/), without changing what it returns.
 */
export function watchScans(spool: Spool): {
  next(count?: number): Promise<void>;
} {
  const scans = new EventEmitter();
  const takeSignals = spool.takeSignals.bind(spool);
  spool.takeSignals = async () => {
    const result = await takeSignals();
    scans.emit('scan');
    return result;
  };
  return {
    async next(count = 1) {
      for (let i = 0; i < count; i++) await once(scans, 'scan');
    },
  };
}

/** The queue id at the end of a "250 ... queued as ID" / "delivered as ID" reply. */
export function queueIdOf(response: string): string {
  const match = / as ([0-9A-Z]+)\s*$/.exec(response);
  if (!match) throw new Error(`no queue id in "${response}"`);
  return match[1]!;
}

/**
 * Writes a message into a spool folder by hand, as the daemon would have left it: the raw
 * bytes in msg/ and its state in `state` (queue/, active/, dead/ or held/). For recovery, rescan
 * and held/ tests.
 */
export async function writeSpooledEntry(options: {
  dir: string;
  id: string;
  raw: string;
  rcptTo: string[];
  routes: RouteConfig[];
  messageId: string | null;
  state: EntryState;
  now?: number;
}): Promise<QueueEntry> {
  const now = options.now ?? Date.now();
  const entry = newQueueEntry({
    envelope: {
      id: options.id,
      mailFrom: 'sender@example.net',
      rcptTo: options.rcptTo,
      receivedAt: new Date(now).toISOString(),
    },
    groups: groupByRoute(options.rcptTo, options.routes),
    messageId: options.messageId,
    size: Buffer.byteLength(options.raw),
    now,
  });
  for (const sub of ['tmp', 'msg', 'queue', 'active', 'dead', 'held']) {
    await mkdir(join(options.dir, sub), { recursive: true });
  }
  await writeFile(join(options.dir, 'msg', `${options.id}.eml`), options.raw);
  await writeFile(
    join(options.dir, options.state, `${options.id}.json`),
    JSON.stringify(entry),
  );
  return entry;
}

/**
 * Spools a message as held, through the spool's own moves: committed claimed (in a claim folder
 * of its own, `active-99`, which no daemon of the test uses), decided by the real decision with
 * every route (or those in `held`) held for `reason`, the others delivered, and moved to held/.
 * No production policy holds a message yet: this is how tests get a held one.
 */
export async function spoolHeldMessage(options: {
  dir: string;
  id: string;
  raw: string;
  rcptTo: string[];
  routes: RouteConfig[];
  messageId: string | null;
  reason?: string;
  /** when it was held (ms since the epoch; default now) */
  heldAt?: number;
  /** the route indexes held (default every route) */
  held?: number[];
}): Promise<QueueEntry> {
  const at = options.heldAt ?? Date.now();
  const spool = await new Spool(options.dir, 'active-99').init();
  const entry = newQueueEntry({
    envelope: {
      id: options.id,
      mailFrom: 'sender@example.net',
      rcptTo: options.rcptTo,
      receivedAt: new Date(at).toISOString(),
    },
    groups: groupByRoute(options.rcptTo, options.routes),
    messageId: options.messageId,
    size: Buffer.byteLength(options.raw),
    now: at,
  });
  const tmp = spool.tmpMessagePath(options.id);
  await writeFile(tmp, options.raw);
  await spool.commit(entry, tmp, 'active');
  const reason = options.reason ?? 'auto-reply';
  const results: RouteResult[] = entry.routes.map(r =>
    (options.held ?? [r.index]).includes(r.index)
      ? { index: r.index, outcome: 'held', reason }
      : { index: r.index, outcome: 'delivered' },
  );
  const decided = decide(entry, results, {
    startedAt: at,
    now: at,
    retry: {
      initialDelayMs: 1000,
      multiplier: 2,
      maxDelayMs: 60_000,
      maxAgeMs: 86_400_000,
    },
    random: () => 0.5,
  });
  if (decided.outcome !== 'held') throw new Error('nothing held');
  await spool.move(decided.entry, 'active', 'held');
  await rm(join(options.dir, 'active-99'), { recursive: true, force: true });
  return decided.entry;
}
