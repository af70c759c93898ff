// Unit tables for the retry schedule: full jitter within bounds, the cap, Retry-After when later.
import { expect } from 'chai';
import {
  backoffDelay,
  nextAttemptAt,
  type BackoffOptions,
} from '../../src/pipeline/backoff.js';

const OPTIONS: BackoffOptions = {
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 60_000,
};

/** Just below 1: `random()` returns values in [0, 1). */
const TOP = 1 - Number.EPSILON;

/** A small deterministic generator of values in [0, 1), for the bounds check. */
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('backoffDelay', () => {
  /** [failed attempts, random value, options, expected delay] */
  const ROWS: Array<[number, number, BackoffOptions, number]> = [
    // the ceiling doubles from initialDelayMs: 1000, 2000, 4000, ...
    [1, 0, OPTIONS, 0],
    [1, 0.5, OPTIONS, 500],
    [1, TOP, OPTIONS, 999],
    [2, 0.5, OPTIONS, 1000],
    [2, TOP, OPTIONS, 1999],
    [3, 0.5, OPTIONS, 2000],
    [6, 0.5, OPTIONS, 16_000],
    [6, TOP, OPTIONS, 31_999],
    // 1000 * 2^6 = 64000 is over the cap of 60000
    [7, 0.5, OPTIONS, 30_000],
    [7, TOP, OPTIONS, 59_999],
    [50, TOP, OPTIONS, 59_999],
    // 2^1999 is Infinity in floating point: still the cap
    [2000, 0.5, OPTIONS, 30_000],
    // attempt 0 or less counts as the first
    [0, 0.5, OPTIONS, 500],
    [-3, 0.5, OPTIONS, 500],
    // other multipliers
    [5, 0.5, { ...OPTIONS, multiplier: 1 }, 500],
    [3, 0.5, { ...OPTIONS, multiplier: 3 }, 4500],
    [2, 0.5, { ...OPTIONS, multiplier: 1.5 }, 750],
    // an initial delay above the cap is capped from the first retry
    [1, 0.5, { ...OPTIONS, initialDelayMs: 90_000 }, 30_000],
    [1, TOP, { initialDelayMs: 1, multiplier: 2, maxDelayMs: 1 }, 0],
  ];

  for (const [attempt, random, options, expected] of ROWS) {
    const { initialDelayMs: initial, multiplier, maxDelayMs: cap } = options;
    it(`attempt ${attempt}, random ${random}, ${initial} x${multiplier} cap ${cap} -> ${expected} ms`, () => {
      expect(backoffDelay(attempt, options, () => random)).to.equal(expected);
    });
  }

  it('full jitter: always a whole number in [0, min(max, initial * multiplier^(n-1)))', () => {
    const random = lcg(42);
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(60_000, 1000 * 2 ** (attempt - 1));
      const seen: number[] = [];
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, OPTIONS, random);
        expect(Number.isInteger(delay), `${delay}`).to.equal(true);
        expect(delay).to.be.at.least(0).and.below(ceiling);
        seen.push(delay);
      }
      // spread over the whole range, not stuck at one end
      expect(Math.min(...seen)).to.be.below(ceiling * 0.1);
      expect(Math.max(...seen)).to.be.above(ceiling * 0.9);
    }
  });

  it('uses Math.random when no generator is given', () => {
    const delay = backoffDelay(3, OPTIONS);
    expect(delay).to.be.at.least(0).and.below(4000);
  });
});

describe('nextAttemptAt', () => {
  const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

  /** [name, failed attempts, Retry-After time, random value, expected time] */
  const ROWS: Array<[string, number, number | undefined, number, number]> = [
    ['no Retry-After: now plus the delay', 1, undefined, 0.5, NOW + 500],
    ['no Retry-After, random 0: now', 1, undefined, 0, NOW],
    [
      'Retry-After later than the delay wins',
      1,
      NOW + 120_000,
      0.5,
      NOW + 120_000,
    ],
    ['Retry-After earlier than the delay loses', 3, NOW + 100, 0.5, NOW + 2000],
    ['Retry-After equal to the delay', 1, NOW + 500, 0.5, NOW + 500],
    ['Retry-After in the past is ignored', 1, NOW - 5000, 0.5, NOW + 500],
    [
      'Retry-After beyond the cap still wins',
      9,
      NOW + 7_200_000,
      TOP,
      NOW + 7_200_000,
    ],
    ['capped delay without Retry-After', 9, undefined, TOP, NOW + 59_999],
  ];

  for (const [name, attempt, retryAt, random, expected] of ROWS) {
    it(name, () => {
      expect(
        nextAttemptAt(NOW, attempt, OPTIONS, retryAt, () => random),
      ).to.equal(expected);
    });
  }
});
