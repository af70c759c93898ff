// The dedupe store on a real temporary folder: records, the window, pruning, a lost bucket.
import { expect } from 'chai';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DedupeStore } from '../../src/spool/dedupe-store.js';

const WINDOW = 60_000;

describe('DedupeStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-dedupe-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const key = DedupeStore.key('<a@example.net>', 'mb-1');

  it('a key is the same for the same pair and differs per mailbox', () => {
    expect(DedupeStore.key('<a@example.net>', 'mb-1')).to.equal(key);
    expect(DedupeStore.key('<a@example.net>', 'mb-2')).not.to.equal(key);
    expect(key).to.match(/^[0-9a-f]{64}$/);
  });

  const clockCases: Array<[string, number, boolean]> = [
    ['just recorded', 0, true],
    ['just inside the window', WINDOW - 1, true],
    ['at the end of the window', WINDOW, false],
    ['long after', 10 * WINDOW, false],
  ];
  for (const [name, later, expected] of clockCases) {
    it(`with its own clock: ${name} -> has ${expected}`, async () => {
      let now = Date.UTC(2025, 0, 1);
      const store = new DedupeStore(join(dir, 'd'), WINDOW, () => now);
      expect(await store.has(key)).to.equal(false);
      await store.add(key);
      now += later;
      expect(await store.has(key)).to.equal(expected);
    });
  }

  it('on the wall clock: the record is one empty file whose mtime is now', async () => {
    const store = new DedupeStore(join(dir, 'd'), WINDOW);
    const before = Date.now();
    await store.add(key);
    const info = await stat(join(dir, 'd', key.slice(0, 2), key));
    expect(info.size).to.equal(0);
    expect(info.mtimeMs).to.be.within(before - 1000, Date.now() + 1000);
    expect(await store.has(key)).to.equal(true);
  });

  it('a second add of the same key moves its time forward', async () => {
    let now = Date.UTC(2025, 0, 1);
    const store = new DedupeStore(join(dir, 'd'), WINDOW, () => now);
    await store.add(key);
    now += WINDOW - 10;
    await store.add(key);
    now += WINDOW - 10;
    expect(await store.has(key)).to.equal(true);
  });

  it('a bucket folder removed under it is made again', async () => {
    const store = new DedupeStore(join(dir, 'd'), WINDOW);
    await store.add(key);
    await rm(join(dir, 'd', key.slice(0, 2)), { recursive: true });
    await store.add(key);
    expect(await store.has(key)).to.equal(true);
  });

  it('window 0: nothing recorded, nothing found', async () => {
    const store = new DedupeStore(join(dir, 'd'), 0);
    await store.add(key);
    expect(await store.has(key)).to.equal(false);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('prune removes the records past the window only', async () => {
    let now = Date.UTC(2025, 0, 1);
    const store = new DedupeStore(join(dir, 'd'), WINDOW, () => now);
    const old = DedupeStore.key('<old@example.net>', 'mb-1');
    await store.add(old);
    now += WINDOW / 2;
    await store.add(key);
    now += WINDOW / 2;
    expect(await store.prune()).to.equal(1);
    expect(await store.has(old)).to.equal(false);
    expect(await store.has(key)).to.equal(true);
    expect(await readdir(join(dir, 'd', old.slice(0, 2)))).not.to.include(old);
  });
});
