// Regression (review): in a cluster, one worker's prune must not remove the log another live worker appends to.
import { expect } from 'chai';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DedupeStore } from '../../src/dedupe/dedupe-store.js';

const WINDOW = 60_000;
const T0 = Date.UTC(2025, 0, 1);

describe('DedupeStore prune in a cluster', () => {
  let dir: string;
  let store: string;
  const opened: DedupeStore[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-review-dedupe-'));
    store = join(dir, 'dedupe');
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  function open(clock: { now: number }, name: string): DedupeStore {
    const s = new DedupeStore(store, WINDOW, () => clock.now, {
      name,
      shared: true,
      refreshMs: 0,
    });
    opened.push(s);
    return s;
  }

  it('a delivery recorded by a worker that was idle for a window is still seen by the others and after a restart', async () => {
    const clock = { now: T0 };
    const one = open(clock, 'active-1');
    const two = open(clock, 'active-2');
    // worker 2 delivers once, then nothing for longer than the window (its log's mtime ages)
    await two.add(DedupeStore.key('<first@example.net>', 'mb-1'));
    const log = join(store, 'active-2.0.log');
    const longAgo = (Date.now() - 2 * WINDOW) / 1000;
    await utimes(log, longAgo, longAgo);
    clock.now += 2 * WINDOW;
    // worker 1's hourly prune takes it for the log of a slot that no longer runs
    await one.prune();
    expect(await readdir(store)).not.to.include('active-2.0.log');

    // worker 2 is alive and delivers again: its record goes to the file it still has open
    const key = DedupeStore.key('<second@example.net>', 'mb-1');
    await two.add(key);
    expect(await one.has(key), 'seen by the other worker').to.equal(true);
    const restarted = open(clock, 'active-3');
    expect(await restarted.has(key), 'seen after a restart').to.equal(true);
  });
});
