// lib/time-limit.ts: one promise against a time limit, the timer cleared whichever comes first.
import { expect } from 'chai';
import { withinTime } from '../../src/lib/time-limit.js';

/** A promise that never settles: the limit always comes first. */
const never = new Promise<never>(() => undefined);

/** Timers that keep the process alive now. */
const timers = () =>
  process.getActiveResourcesInfo().filter(kind => kind === 'Timeout').length;

/** A promise and its resolve function. */
function pending<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>(done => (resolve = done));
  return { promise, resolve };
}

describe('lib/time-limit: withinTime', () => {
  const timedOut = () => {
    throw new Error('timed out');
  };
  const cases: Array<{
    name: string;
    work: () => Promise<unknown>;
    late: () => unknown;
    expected: { value: unknown } | { error: string };
    lateCalls: number;
  }> = [
    {
      name: 'the work first: its value',
      work: () => Promise.resolve('done'),
      late: () => 'late',
      expected: { value: 'done' },
      lateCalls: 0,
    },
    {
      name: 'the work fails first: its error',
      work: () => Promise.reject(new Error('broken')),
      late: () => 'late',
      expected: { error: 'broken' },
      lateCalls: 0,
    },
    {
      name: 'the limit first: what late() gives',
      work: () => never,
      late: () => 'late',
      expected: { value: 'late' },
      lateCalls: 1,
    },
    {
      name: 'the limit first, late() throws: its error',
      work: () => never,
      late: timedOut,
      expected: { error: 'timed out' },
      lateCalls: 1,
    },
  ];
  for (const { name, work, late, expected, lateCalls } of cases) {
    it(name, async () => {
      let calls = 0;
      const outcome = await withinTime(work(), 1, () => {
        calls++;
        return late();
      }).then(
        value => ({ value }),
        (err: Error) => ({ error: err.message }),
      );
      expect(outcome).to.deep.equal(expected);
      // a timer set after it, for longer, fires after the limit's would have: none came
      await new Promise(done => setTimeout(done, 2));
      expect(calls).to.equal(lateCalls);
    });
  }

  it('unref: the limit alone does not keep the process alive', async () => {
    const before = timers();
    const first = pending<string>();
    const held = withinTime(first.promise, 60_000, () => 'late');
    expect(timers()).to.equal(before + 1);
    const second = pending<string>();
    const unheld = withinTime(second.promise, 60_000, () => 'late', {
      unref: true,
    });
    expect(timers()).to.equal(before + 1);
    first.resolve('done');
    second.resolve('done');
    expect(await held).to.equal('done');
    expect(await unheld).to.equal('done');
  });
});
