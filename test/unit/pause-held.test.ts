// A pause (401/403/404 from the API) ends only when an attempt reached the API: a probe that a
// route's policy held on every route posted nothing, and says nothing of our credentials.
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { AttemptResult } from '../../src/pipeline/decide.js';
import { DeliveryPause } from '../../src/queue/pause.js';
import type { QueueEntry } from '../../src/spool/queue-entry.js';

const RETRY = {
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 60_000,
  maxAgeMs: 86_400_000,
};

function result(
  outcome: AttemptResult['outcome'],
  configError = false,
): AttemptResult {
  return {
    entry: { lastError: configError ? 'HTTP 401' : null } as QueueEntry,
    outcome,
    configError,
  };
}

describe('delivery pause: what ends it', () => {
  const log = createLogger({
    level: 'error',
    stream: new Writable({ write: (_c, _e, done) => done() }),
  });
  const cases: Array<[AttemptResult['outcome'], boolean]> = [
    ['held', true],
    ['delivered', false],
    ['retry', false],
    ['dead', false],
  ];
  for (const [outcome, stillPaused] of cases) {
    it(`a probe whose outcome is ${outcome}: ${stillPaused ? 'still paused' : 'resumed'}`, () => {
      const pause = new DeliveryPause({
        retry: RETRY,
        log,
        metrics: createMetrics(),
        now: () => 0,
      });
      expect(pause.note(result('retry', true), () => undefined)).to.equal(true);
      pause.note(result(outcome), () => undefined);
      expect(pause.reason !== null).to.equal(stillPaused);
    });
  }
});
