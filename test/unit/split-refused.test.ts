// splitRefused: LMTP in hybrid mode answers a route refused for good at once and files the rest.
import { expect } from 'chai';
import type { AttemptResult } from '../../src/queue/attempt-delivery.js';
import { splitRefused } from '../../src/intake/hybrid.js';
import type { RouteState } from '../../src/spool/queue-entry.js';

type Status = RouteState['status'];

function route(index: number, status: Status): RouteState {
  return {
    route: { match: `r${index}@example.com`, mailbox_id: `mb-${index}` },
    index,
    recipients: [`r${index}@example.com`],
    status,
    ...(status === 'delivered'
      ? {}
      : {
          lastError: `error ${index}`,
          api: { status: status === 'failed' ? 422 : 503, errors: [] },
        }),
  } as RouteState;
}

function result(
  statuses: Status[],
  outcome: AttemptResult['outcome'],
): AttemptResult {
  const routes = statuses.map((s, i) => route(i, s));
  return {
    outcome,
    configError: false,
    messageId: '<m@example.net>',
    entry: {
      version: 1,
      id: 'Q1',
      envelope: {} as AttemptResult['entry']['envelope'],
      messageId: '<m@example.net>',
      size: 10,
      routes,
      attempts: 1,
      createdAt: 1000,
      nextAttemptAt: 61_000,
      lastError: routes.at(-1)?.lastError ?? null,
      history: [{ at: 'then', results: { 0: 'x' } }],
      ...(outcome === 'dead'
        ? { dead: { reason: 'refused', at: 'then' } }
        : {}),
    },
  };
}

describe('splitRefused', () => {
  const cases: Array<{
    name: string;
    statuses: Status[];
    outcome: AttemptResult['outcome'];
    expected: null | {
      refused: number[];
      kept: number[];
      outcome: AttemptResult['outcome'];
      lastError: string | null;
    };
  }> = [
    {
      name: 'every route delivered: nothing to split',
      statuses: ['delivered', 'delivered'],
      outcome: 'delivered',
      expected: null,
    },
    {
      name: 'one waiting, none refused: nothing to split',
      statuses: ['delivered', 'pending'],
      outcome: 'retry',
      expected: null,
    },
    {
      name: 'every route refused: one 554 for all, answered before',
      statuses: ['failed', 'failed'],
      outcome: 'dead',
      expected: null,
    },
    {
      name: 'delivered and refused: the delivered one is filed as delivered',
      statuses: ['delivered', 'failed'],
      outcome: 'dead',
      expected: {
        refused: [1],
        kept: [0],
        outcome: 'delivered',
        lastError: null,
      },
    },
    {
      name: 'waiting and refused: the waiting one is filed for a retry',
      statuses: ['failed', 'pending', 'delivered'],
      outcome: 'retry',
      expected: {
        refused: [0],
        kept: [1, 2],
        outcome: 'retry',
        lastError: 'error 1',
      },
    },
    {
      name: 'held and refused: the held one is filed as held',
      statuses: ['held', 'failed', 'delivered'],
      outcome: 'dead',
      expected: {
        refused: [1],
        kept: [0, 2],
        outcome: 'held',
        lastError: 'error 0',
      },
    },
    {
      name: 'held, waiting and refused: filed for a retry, the held one stays held',
      statuses: ['held', 'failed', 'pending'],
      outcome: 'retry',
      expected: {
        refused: [1],
        kept: [0, 2],
        outcome: 'retry',
        lastError: 'error 2',
      },
    },
    {
      name: 'waiting and refused, but dead (outlived maxAgeMs): filed whole',
      statuses: ['failed', 'pending'],
      outcome: 'dead',
      expected: null,
    },
  ];

  for (const { name, statuses, outcome, expected } of cases) {
    it(name, () => {
      const input = result(statuses, outcome);
      const split = splitRefused(input);
      if (!expected) {
        expect(split).to.equal(null);
        return;
      }
      expect(split).to.not.equal(null);
      expect(split!.refused.map(r => r.index)).to.deep.equal(expected.refused);
      expect(split!.kept.outcome).to.equal(expected.outcome);
      const kept = split!.kept.entry;
      expect(kept.routes.map(r => r.index)).to.deep.equal(expected.kept);
      expect(kept.lastError).to.equal(expected.lastError);
      expect(kept).to.not.have.property('dead');
      // the rest of the state is the attempt's: its count, history and retry time
      expect(kept.attempts).to.equal(1);
      expect(kept.history).to.deep.equal(input.entry.history);
      expect(kept.nextAttemptAt).to.equal(61_000);
      expect(split!.kept.messageId).to.equal('<m@example.net>');
    });
  }

  it('held and refused: the kept entry says why it is held, since the refusal', () => {
    const input = result(['held', 'failed'], 'dead');
    input.entry.routes[0]!.heldReason = 'auto-reply';
    const split = splitRefused(input);
    expect(split?.kept.entry.held).to.deep.equal({
      reason: 'auto-reply',
      at: 'then',
    });
  });
});
