// The one decision point, one row per case: an attempt's route results and the message's state
// -> delivered, retry at T, dead with its reason, held with its reason, or a retry that pauses
// delivery.
import { expect } from 'chai';
import {
  PermanentError,
  TemporaryError,
} from '../../src/errors/bridge-error.js';
import {
  decide,
  decideUnparsed,
  type AttemptOutcome,
  type RouteResult,
} from '../../src/pipeline/decide.js';
import {
  newQueueEntry,
  pendingOf,
  releaseEntry,
  replayEntry,
  type QueueEntry,
  type RouteStatus,
} from '../../src/spool/queue-entry.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const DAY = 86_400_000;
const RETRY = {
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 60_000,
  maxAgeMs: DAY,
};
const CONTEXT = { startedAt: NOW, now: NOW, retry: RETRY, random: () => 0.5 };

/** A message of two routes (0 and 1), both pending, accepted now. */
function entry(change: (e: QueueEntry) => QueueEntry = e => e): QueueEntry {
  const made = newQueueEntry({
    envelope: {
      id: 'Q1',
      mailFrom: 'jane@example.net',
      rcptTo: ['a@example.com', 'b@example.com'],
      receivedAt: new Date(NOW).toISOString(),
    },
    groups: [0, 1].map(index => ({
      route: { match: `${'ab'[index]}@example.com`, mailbox_id: `mb-${index}` },
      index,
      recipients: [`${'ab'[index]}@example.com`],
    })) as never,
    messageId: '<m@example.net>',
    size: 10,
    now: NOW,
  });
  return change(made);
}

const ok = (index: number): RouteResult => ({ index, outcome: 'delivered' });
const dup = (index: number): RouteResult => ({ index, outcome: 'duplicate' });
const failed = (index: number, failure: unknown): RouteResult => ({
  index,
  outcome: 'failed',
  failure,
});
const held = (index: number, reason = 'auto-reply'): RouteResult => ({
  index,
  outcome: 'held',
  reason,
});
const dropped = (index: number, reason = 'bounce: X'): RouteResult => ({
  index,
  outcome: 'dropped',
  reason,
});
const t503 = () =>
  new TemporaryError('API HTTP 503', { api: { status: 503, errors: [] } });
const p422 = () =>
  new PermanentError('API HTTP 422', { api: { status: 422, errors: ['x'] } });
const c401 = () =>
  new TemporaryError('API HTTP 401', {
    configError: true,
    api: { status: 401, errors: [] },
  });

interface Row {
  name: string;
  entry?: (e: QueueEntry) => QueueEntry;
  results: RouteResult[];
  outcome: AttemptOutcome;
  statuses: RouteStatus[];
  configError?: boolean;
  nextAttemptAt?: number;
  reason?: string;
  deadStatus?: number;
  /** the entry's held.reason, when held */
  heldReason?: string;
  /** the result's dropped routes, `route N: reason` */
  dropped?: string[];
}

const ROWS: Row[] = [
  {
    name: 'every route delivered: delivered',
    results: [ok(0), ok(1)],
    outcome: 'delivered',
    statuses: ['delivered', 'delivered'],
  },
  {
    name: 'a duplicate counts as delivered',
    results: [dup(0), ok(1)],
    outcome: 'delivered',
    statuses: ['delivered', 'delivered'],
  },
  {
    name: 'a temporary failure: retry after the first delay (jitter 0.5 of 1 s)',
    results: [ok(0), failed(1, t503())],
    outcome: 'retry',
    statuses: ['delivered', 'pending'],
    nextAttemptAt: NOW + 500,
  },
  {
    name: 'a plain Error (a bug) is temporary',
    results: [failed(0, new Error('socket hang up')), ok(1)],
    outcome: 'retry',
    statuses: ['pending', 'delivered'],
  },
  {
    name: 'Retry-After later than the backoff wins',
    results: [
      failed(0, new TemporaryError('API HTTP 429', { retryAt: NOW + 30_000 })),
      ok(1),
    ],
    outcome: 'retry',
    statuses: ['pending', 'delivered'],
    nextAttemptAt: NOW + 30_000,
  },
  {
    name: 'a permanent refusal with nothing pending: dead, refused, with the API status',
    results: [ok(0), failed(1, p422())],
    outcome: 'dead',
    statuses: ['delivered', 'failed'],
    reason: 'refused: API HTTP 422',
    deadStatus: 422,
  },
  {
    name: 'a permanent refusal beside a temporary failure: retry the pending route',
    results: [failed(0, p422()), failed(1, t503())],
    outcome: 'retry',
    statuses: ['failed', 'pending'],
  },
  {
    name: 'temporary past maxAgeMs: dead, expired',
    entry: e => ({ ...e, createdAt: NOW - DAY, attempts: 4 }),
    results: [ok(0), failed(1, t503())],
    outcome: 'dead',
    statuses: ['delivered', 'pending'],
    reason: 'expired after 5 attempts in 86400 s: API HTTP 503',
    deadStatus: 503,
  },
  {
    name: 'a config error (401): retry, pause, and no expiry',
    entry: e => ({ ...e, createdAt: NOW - 2 * DAY }),
    results: [failed(0, c401()), failed(1, c401())],
    outcome: 'retry',
    statuses: ['pending', 'pending'],
    configError: true,
  },
  {
    name: 'a route refused by an earlier attempt stays failed and keeps its API answer',
    entry: e => ({
      ...e,
      routes: e.routes.map(r =>
        r.index === 0
          ? {
              ...r,
              status: 'failed',
              lastError: 'API HTTP 400',
              api: { status: 400, errors: [] },
            }
          : r,
      ),
    }),
    results: [ok(1)],
    outcome: 'dead',
    statuses: ['failed', 'delivered'],
    reason: 'refused: API HTTP 400',
    deadStatus: 400,
  },
  {
    name: 'every route held: held, the reasons each once',
    results: [held(0), held(1)],
    outcome: 'held',
    statuses: ['held', 'held'],
    heldReason: 'auto-reply',
  },
  {
    name: 'held beside delivered: held, the held reason only',
    results: [ok(0), held(1, 'DMARC fail (quarantine)')],
    outcome: 'held',
    statuses: ['delivered', 'held'],
    heldReason: 'DMARC fail (quarantine)',
  },
  {
    name: 'held beside a duplicate: held',
    results: [held(0, 'bulk'), dup(1)],
    outcome: 'held',
    statuses: ['held', 'delivered'],
    heldReason: 'bulk',
  },
  {
    name: 'two routes held for different reasons: both reasons, in route order',
    results: [held(0, 'auto-reply'), held(1, 'bulk')],
    outcome: 'held',
    statuses: ['held', 'held'],
    heldReason: 'auto-reply; bulk',
  },
  {
    name: 'held beside a temporary failure: retry the pending route, the held one stays held',
    results: [held(0), failed(1, t503())],
    outcome: 'retry',
    statuses: ['held', 'pending'],
    nextAttemptAt: NOW + 500,
  },
  {
    name: 'held beside a permanent refusal: dead, refused',
    results: [held(0), failed(1, p422())],
    outcome: 'dead',
    statuses: ['held', 'failed'],
    reason: 'refused: API HTTP 422',
    deadStatus: 422,
  },
  {
    name: 'a route held by an earlier attempt, the other delivered now: held',
    entry: e => ({
      ...e,
      routes: e.routes.map(r =>
        r.index === 0 ? { ...r, status: 'held', heldReason: 'bulk' } : r,
      ),
    }),
    results: [ok(1)],
    outcome: 'held',
    statuses: ['held', 'delivered'],
    heldReason: 'bulk',
  },
  {
    name: 'a route held by an earlier attempt, the other expired: dead, expired',
    entry: e => ({
      ...e,
      createdAt: NOW - DAY,
      routes: e.routes.map(r =>
        r.index === 0 ? { ...r, status: 'held', heldReason: 'bulk' } : r,
      ),
    }),
    results: [failed(1, t503())],
    outcome: 'dead',
    statuses: ['held', 'pending'],
    reason: 'expired after 1 attempts in 86400 s: API HTTP 503',
    deadStatus: 503,
  },
  {
    name: 'a held state whose filing was cut short, attempted with nothing pending: held again',
    entry: e => ({
      ...e,
      routes: e.routes.map(r => ({
        ...r,
        status: 'held',
        heldReason: 'auto-reply',
      })),
      held: { reason: 'auto-reply', at: new Date(NOW - DAY).toISOString() },
    }),
    results: [],
    outcome: 'held',
    statuses: ['held', 'held'],
    heldReason: 'auto-reply',
  },
  {
    name: 'every route dropped: dropped (removed like delivered, nothing posted)',
    results: [dropped(0), dropped(1, 'bulk: List-Id (bulk: drop)')],
    outcome: 'dropped',
    statuses: ['delivered', 'delivered'],
    dropped: ['route 0: bounce: X', 'route 1: bulk: List-Id (bulk: drop)'],
  },
  {
    name: 'dropped beside delivered: delivered, the dropped route named',
    results: [ok(0), dropped(1)],
    outcome: 'delivered',
    statuses: ['delivered', 'delivered'],
    dropped: ['route 1: bounce: X'],
  },
  {
    name: 'dropped beside held: held',
    results: [dropped(0), held(1)],
    outcome: 'held',
    statuses: ['delivered', 'held'],
    heldReason: 'auto-reply',
    dropped: ['route 0: bounce: X'],
  },
  {
    name: 'dropped beside a temporary failure: retry the other route only',
    results: [dropped(0), failed(1, t503())],
    outcome: 'retry',
    statuses: ['delivered', 'pending'],
    dropped: ['route 0: bounce: X'],
  },
  {
    name: 'a route dropped by an earlier attempt, the other delivered now: delivered',
    entry: e => ({
      ...e,
      routes: e.routes.map(r =>
        r.index === 0 ? { ...r, status: 'delivered', dropped: 'bounce: X' } : r,
      ),
    }),
    results: [ok(1)],
    outcome: 'delivered',
    statuses: ['delivered', 'delivered'],
  },
];

describe('decide', () => {
  for (const row of ROWS) {
    it(row.name, () => {
      const before = entry(row.entry);
      const unchanged = structuredClone(before);
      const result = decide(before, row.results, CONTEXT);
      expect(result.outcome).to.equal(row.outcome);
      expect(result.configError).to.equal(row.configError ?? false);
      expect(result.entry.routes.map(r => r.status)).to.deep.equal(
        row.statuses,
      );
      expect(result.entry.attempts).to.equal(before.attempts + 1);
      if (row.nextAttemptAt !== undefined) {
        expect(result.entry.nextAttemptAt).to.equal(row.nextAttemptAt);
      }
      expect(result.entry.dead?.reason).to.equal(row.reason);
      expect(result.entry.dead?.status).to.equal(row.deadStatus);
      expect(result.entry.held?.reason).to.equal(row.heldReason);
      expect(result.dropped).to.deep.equal(row.dropped);
      if (row.heldReason !== undefined) {
        expect(result.entry.held?.at).to.equal(new Date(NOW).toISOString());
      }
      // the entry given is left as it was
      expect(before).to.deep.equal(unchanged);
    });
  }

  it('keeps each failure typed, by route index, for the replies', () => {
    const refusal = p422();
    const result = decide(entry(), [ok(0), failed(1, refusal)], CONTEXT);
    expect(result.failures?.get(1)).to.equal(refusal);
    expect(result.failures?.has(0)).to.equal(false);
  });

  it('writes one history line: each route result as text', () => {
    const result = decide(entry(), [dup(0), failed(1, t503())], CONTEXT);
    expect(result.entry.history).to.deep.equal([
      {
        at: new Date(NOW).toISOString(),
        results: { 0: 'duplicate', 1: 'API HTTP 503' },
      },
    ]);
    expect(result.entry.lastError).to.equal('API HTTP 503');
  });
});

describe('decide: held routes', () => {
  it('a held route: status, reason, history "held: <reason>", no lastError', () => {
    const result = decide(
      entry(),
      [ok(0), held(1, 'DMARC fail (quarantine)')],
      CONTEXT,
    );
    const route = result.entry.routes[1]!;
    expect(route).to.include({
      status: 'held',
      heldReason: 'DMARC fail (quarantine)',
    });
    expect(route.lastError).to.equal(undefined);
    expect(result.entry.lastError).to.equal(null);
    expect(result.entry.history.at(-1)?.results).to.deep.equal({
      0: 'delivered',
      1: 'held: DMARC fail (quarantine)',
    });
    expect(result.failures?.size).to.equal(0);
  });

  it('a held route is not pending: pendingOf leaves it out; a released one says so', () => {
    const retried = decide(entry(), [held(0), failed(1, t503())], CONTEXT);
    expect(pendingOf(retried.entry).map(g => g.index)).to.deep.equal([1]);
    const released = releaseEntry(
      decide(entry(), [held(0), ok(1)], CONTEXT).entry,
      NOW + 1,
    );
    expect(pendingOf(released)).to.deep.equal([
      {
        route: released.routes[0]!.route,
        index: 0,
        recipients: ['a@example.com'],
        threadId: undefined,
        released: true,
      },
    ]);
  });

  it('releaseEntry: held routes pending and released, the hold gone, due now', () => {
    const heldEntry = decide(entry(), [held(0), ok(1)], CONTEXT).entry;
    const released = releaseEntry(heldEntry, NOW + 5);
    expect(released.held).to.equal(undefined);
    expect(released.routes.map(r => r.status)).to.deep.equal([
      'pending',
      'delivered',
    ]);
    expect(released.routes[0]).to.include({ released: true });
    expect(released.routes[0]).to.not.have.property('heldReason');
    expect(released.routes[1]).to.not.have.property('released');
    expect(released).to.include({
      attempts: 0,
      createdAt: NOW + 5,
      nextAttemptAt: NOW + 5,
    });
    // the history of the hold is kept
    expect(released.history).to.deep.equal(heldEntry.history);
  });

  it('replayEntry of a dead message: failed routes pending again, held ones stay held', () => {
    const dead = decide(entry(), [held(0), failed(1, p422())], CONTEXT).entry;
    const replayed = replayEntry(dead, NOW + 5);
    expect(replayed.routes.map(r => r.status)).to.deep.equal([
      'held',
      'pending',
    ]);
    expect(replayed.dead).to.equal(undefined);
    // the replayed route delivered: the message is held, for its held route
    const after = decide(replayed, [ok(1)], CONTEXT);
    expect(after.outcome).to.equal('held');
    expect(after.entry.held?.reason).to.equal('auto-reply');
  });

  it('a released route delivered: delivered, and a hold of before does not linger', () => {
    const heldEntry = decide(entry(), [held(0), ok(1)], CONTEXT).entry;
    const result = decide(releaseEntry(heldEntry, NOW), [ok(0)], CONTEXT);
    expect(result.outcome).to.equal('delivered');
    expect(result.entry.held).to.equal(undefined);
  });

  it('decideUnparsed leaves held routes held', () => {
    const retried = decide(entry(), [held(0), failed(1, t503())], CONTEXT);
    const result = decideUnparsed(
      retried.entry,
      { error: new PermanentError('unparseable'), rawMissing: false },
      CONTEXT,
    );
    expect(result.outcome).to.equal('dead');
    expect(result.entry.routes.map(r => r.status)).to.deep.equal([
      'held',
      'failed',
    ]);
  });
});

describe('decideUnparsed', () => {
  const rows: Array<{
    name: string;
    error: unknown;
    rawMissing: boolean;
    outcome: AttemptOutcome;
    lastError: string;
  }> = [
    {
      name: 'bytes the parser refuses: dead at once, its error kept',
      error: new PermanentError(
        'Message could not be parsed: Max allowed child nodes exceeded',
      ),
      rawMissing: false,
      outcome: 'dead',
      lastError:
        'message could not be parsed: Max allowed child nodes exceeded',
    },
    {
      name: 'a permanent error of another wording: its words kept after the same start',
      error: new PermanentError('unparseable'),
      rawMissing: false,
      outcome: 'dead',
      lastError: 'message could not be parsed: unparseable',
    },
    {
      name: 'the raw file gone: dead at once',
      error: Object.assign(new Error('ENOENT'), { code: 'ENOENT' }),
      rawMissing: true,
      outcome: 'dead',
      lastError: 'raw message missing from the spool',
    },
    {
      name: 'a disk error: retry',
      error: new Error('EIO: i/o error'),
      rawMissing: false,
      outcome: 'retry',
      lastError: 'local error: EIO: i/o error',
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const result = decideUnparsed(
        entry(),
        { error: row.error, rawMissing: row.rawMissing },
        CONTEXT,
      );
      expect(result.outcome).to.equal(row.outcome);
      expect(result.entry.lastError).to.equal(row.lastError);
      if (row.outcome === 'dead') {
        expect(result.entry.dead?.reason).to.equal(`refused: ${row.lastError}`);
      }
      expect(result.configError).to.equal(false);
    });
  }
});
