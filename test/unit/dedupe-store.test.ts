// The dedupe store on a real temporary folder: lookups, the window, logs, restarts, pruning.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DedupeStore } from '../../src/dedupe/dedupe-store.js';

const WINDOW = 60_000;
const T0 = Date.UTC(2025, 0, 1);

describe('DedupeStore', () => {
  let dir: string;
  let store: string;
  const opened: DedupeStore[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-dedupe-'));
    store = join(dir, 'dedupe');
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A store on `store` with a clock the test moves. */
  function open(
    clock: { now: number },
    options: ConstructorParameters<typeof DedupeStore>[3] = {},
  ): DedupeStore {
    const s = new DedupeStore(store, WINDOW, () => clock.now, options);
    opened.push(s);
    return s;
  }

  const key = DedupeStore.key('<a@example.net>', 'mb-1');

  it('a key: 16 characters, the same for the same pair, another per mailbox', () => {
    expect(key).to.match(/^[A-Za-z0-9_-]{16}$/);
    expect(DedupeStore.key('<a@example.net>', 'mb-1')).to.equal(key);
    expect(DedupeStore.key('<a@example.net>', 'mb-2')).not.to.equal(key);
    expect(DedupeStore.key('<b@example.net>', 'mb-1')).not.to.equal(key);
  });

  it('a key with a fingerprint: another per fingerprint, never the key without one', () => {
    const withPrint = DedupeStore.key('<a@example.net>', 'mb-1', 'print-1');
    expect(withPrint).to.match(/^[A-Za-z0-9_-]{16}$/);
    expect(DedupeStore.key('<a@example.net>', 'mb-1', 'print-1')).to.equal(
      withPrint,
    );
    expect(DedupeStore.key('<a@example.net>', 'mb-1', 'print-2')).not.to.equal(
      withPrint,
    );
    expect(withPrint).not.to.equal(key);
    // an entry spooled before fingerprints existed keys as records of that time did
    expect(DedupeStore.key('<a@example.net>', 'mb-1', undefined)).to.equal(key);
  });

  // the records on disk outlive a release: a key computed another way would make every pair
  // recorded before an upgrade look new, and post it again
  it('a key is the first 12 bytes of SHA-256("<id>\\n<mailbox>") in base64url, as records on disk hold it', () => {
    expect(key).to.equal('L9dIz4KFcK-vYAB8');
  });

  const clockCases: Array<[string, number, boolean]> = [
    ['just recorded', 0, true],
    ['just inside the window', WINDOW - 1, true],
    ['at the end of the window', WINDOW, false],
    ['long after', 10 * WINDOW, false],
  ];
  for (const [name, later, expected] of clockCases) {
    it(`${name} -> has ${expected}`, async () => {
      const clock = { now: T0 };
      const s = open(clock);
      expect(await s.has(key)).to.equal(false);
      await s.add(key);
      clock.now += later;
      expect(await s.has(key)).to.equal(expected);
    });
  }

  it('a record is one line of its process log, and survives a restart', async () => {
    const clock = { now: T0 };
    const first = open(clock);
    await first.add(key);
    await first.close();
    expect(await readdir(store)).to.deep.equal(['active.0.log']);
    expect(await readFile(join(store, 'active.0.log'), 'utf8')).to.equal(
      `${T0} ${key}\n`,
    );
    clock.now += WINDOW / 2;
    expect(await open(clock).has(key)).to.equal(true);
  });

  it('adds that arrive together are all written, one line each', async () => {
    const clock = { now: T0 };
    const s = open(clock);
    const keys = Array.from({ length: 50 }, (_, i) =>
      DedupeStore.key(`<m${i}@example.net>`, 'mb'),
    );
    await Promise.all(keys.map(k => s.add(k)));
    const lines = (await readFile(join(store, 'active.0.log'), 'utf8'))
      .trim()
      .split('\n');
    expect(lines.map(l => l.split(' ')[1]).sort()).to.deep.equal(
      [...keys].sort(),
    );
  });

  it('a second add moves the time forward', async () => {
    const clock = { now: T0 };
    const s = open(clock);
    await s.add(key);
    clock.now += WINDOW - 10;
    await s.add(key);
    clock.now += WINDOW - 10;
    expect(await s.has(key)).to.equal(true);
  });

  it('shared (a cluster): a miss reads what the other workers logged', async () => {
    const clock = { now: T0 };
    const one = open(clock, { name: 'active-1', shared: true, refreshMs: 0 });
    const two = open(clock, { name: 'active-2', shared: true, refreshMs: 0 });
    expect(await one.has(key)).to.equal(false);
    await two.add(key);
    expect(await one.has(key)).to.equal(true);
    expect((await readdir(store)).sort()).to.deep.equal(['active-2.0.log']);
  });

  it('not shared (one daemon per spool): lookups stay in memory, another log is read at start', async () => {
    const clock = { now: T0 };
    const alone = open(clock, { shared: false });
    expect(await alone.has(key)).to.equal(false);
    await open(clock, { name: 'other', shared: false }).add(key);
    expect(await alone.has(key)).to.equal(false);
    expect(await open(clock, { shared: false }).has(key)).to.equal(true);
  });

  it('a line still being written is read once it is whole', async () => {
    const clock = { now: T0 };
    const reader = open(clock, { shared: true, refreshMs: 0 });
    await mkdir(store, { recursive: true });
    const log = join(store, 'writer.0.log');
    const line = `${T0} ${key}\n`;
    await writeFile(log, line.slice(0, 10));
    expect(await reader.has(key)).to.equal(false);
    await appendFile(log, line.slice(10));
    expect(await reader.has(key)).to.equal(true);
  });

  it('garbage lines are skipped', async () => {
    await mkdir(store, { recursive: true });
    const other = DedupeStore.key('<b@example.net>', 'mb-1');
    await writeFile(
      join(store, 'x.0.log'),
      `not a record\n${T0} short\nabc ${key}\n${T0} ${other}\n`,
    );
    const s = open({ now: T0 });
    expect(await s.has(key)).to.equal(false);
    expect(await s.has(other)).to.equal(true);
    expect(s.size).to.equal(1);
  });

  it('a line torn by a power cut and completed by the next append is not taken as a record from the future', async () => {
    await mkdir(store, { recursive: true });
    const torn = DedupeStore.key('<torn@example.net>', 'mb');
    const next = DedupeStore.key('<next@example.net>', 'mb');
    // "<time> <key>" cut after its first digits, then the next whole line appended to it
    const cut = String(T0).slice(0, 5);
    await writeFile(
      join(store, 'active.0.log'),
      `${T0} ${torn}\n${cut}${T0} ${next}\n${'9'.repeat(400)} ${next}\n`,
    );
    const s = open({ now: T0 });
    expect(await s.has(torn)).to.equal(true);
    // read back as a time thousands of years ahead, it would never expire: it is skipped
    expect(await s.has(next)).to.equal(false);
    expect(s.size).to.equal(1);
    // and a compaction of this process's log does not carry it on
    await s.prune();
    const log = (await readdir(store)).filter(f => f.endsWith('.log'));
    const kept = await Promise.all(
      log.map(f => readFile(join(store, f), 'latin1')),
    );
    expect(kept.join('')).to.not.include(next);
  });

  it('maxRecords: past it the oldest are forgotten first, in memory and when read back', async () => {
    const clock = { now: T0 };
    const keys = Array.from({ length: 5 }, (_, i) =>
      DedupeStore.key(`<cap${i}@example.net>`, 'mb'),
    );
    const s = open(clock, { shared: false, maxRecords: 3 });
    for (const k of keys) {
      await s.add(k);
      clock.now += 1000;
    }
    // a second add of an old one makes it the newest
    await s.add(keys[2]!);
    expect(s.size).to.equal(3);
    const known = await Promise.all(keys.map(k => s.has(k)));
    expect(known).to.deep.equal([false, false, true, true, true]);
    await s.add(DedupeStore.key('<cap5@example.net>', 'mb'));
    expect(await s.has(keys[3]!)).to.equal(false);
    expect(await s.has(keys[2]!)).to.equal(true);
    // a restart reads the whole log and keeps the newest three
    const again = open(clock, { shared: false, maxRecords: 3 });
    expect(await again.has(keys[4]!)).to.equal(true);
    expect(await again.has(keys[0]!)).to.equal(false);
    expect(again.size).to.equal(3);
  });

  const capKey = (n: number) => DedupeStore.key(`<r${n}@example.net>`, 'mb');

  it('a delivery recorded in the same millisecond as the others is still known right after its add', async () => {
    // several deliveries within one tick of the clock; the cap forgets a few at once
    const clock = { now: T0 };
    const s = open(clock, { shared: false, maxRecords: 16 });
    const forgotten: number[] = [];
    for (let n = 0; n < 64; n++) {
      await s.add(capKey(n));
      if (!(await s.has(capKey(n)))) forgotten.push(n);
    }
    expect(
      forgotten,
      'records evicted by the add that made them',
    ).to.deep.equal([]);
  });

  it('a delivery recorded after the clock stepped back is still known right after its add', async () => {
    const clock = { now: T0 };
    const s = open(clock, { shared: false, maxRecords: 16 });
    for (let n = 0; n < 16; n++) {
      await s.add(capKey(n));
      clock.now += 100;
    }
    // NTP steps the clock back a second
    clock.now -= 1000 + 100 * 16;
    await s.add(capKey(100));
    expect(await s.has(capKey(100))).to.equal(true);
  });

  it('window 0: nothing recorded, nothing found, no folder made', async () => {
    const s = new DedupeStore(store, 0);
    await s.add(key);
    expect(await s.has(key)).to.equal(false);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('a folder that cannot be made: lookups answer from memory, an add rejects', async () => {
    await writeFile(store, 'a file where the folder should be');
    const s = open({ now: T0 });
    expect(await s.has(key)).to.equal(false);
    let failed: unknown;
    await s.add(key).catch((err: unknown) => (failed = err));
    expect(failed).to.be.instanceOf(Error);
  });

  it('prune forgets expired records, rewrites its own log, removes stale logs of others', async () => {
    const clock = { now: T0 };
    const s = open(clock, { shared: false });
    const old = DedupeStore.key('<old@example.net>', 'mb-1');
    await s.add(old);
    clock.now += WINDOW / 2;
    await s.add(key);
    await mkdir(store, { recursive: true });
    // a log of a worker slot that no longer runs, untouched for longer than the window
    const stale = join(store, 'active-9.0.log');
    await writeFile(stale, '');
    const longAgo = (Date.now() - 2 * WINDOW) / 1000;
    await utimes(stale, longAgo, longAgo);
    clock.now += WINDOW / 2;

    expect(await s.prune()).to.equal(1);
    expect(await s.has(old)).to.equal(false);
    expect(await s.has(key)).to.equal(true);
    expect(await readdir(store)).to.deep.equal(['active.1.log']);
    expect(await readFile(join(store, 'active.1.log'), 'utf8')).to.equal(
      `${T0 + WINDOW / 2} ${key}\n`,
    );
    // appends go on in the new generation, and a restart reads it
    const later = DedupeStore.key('<later@example.net>', 'mb-1');
    await s.add(later);
    await s.close();
    const restarted = open(clock, { shared: false });
    expect(await restarted.has(key)).to.equal(true);
    expect(await restarted.has(later)).to.equal(true);
    expect(await restarted.has(old)).to.equal(false);
  });

  it('records of the earlier layout (a file per record) are taken in and removed', async () => {
    const hex = (id: string) =>
      createHash('sha256').update(`${id}\nmb-1`).digest('hex');
    const recent = hex('<recent@example.net>');
    const expired = hex('<expired@example.net>');
    for (const [name, ageMs] of [
      [recent, 1000],
      [expired, 2 * WINDOW],
    ] as const) {
      const bucket = join(store, name.slice(0, 2));
      await mkdir(bucket, { recursive: true });
      await writeFile(join(bucket, name), '');
      const at = (Date.now() - ageMs) / 1000;
      await utimes(join(bucket, name), at, at);
    }
    const s = new DedupeStore(store, WINDOW, Date.now, { shared: false });
    opened.push(s);
    expect(
      await s.has(DedupeStore.key('<recent@example.net>', 'mb-1')),
    ).to.equal(true);
    expect(
      await s.has(DedupeStore.key('<expired@example.net>', 'mb-1')),
    ).to.equal(false);
    expect(await readdir(store)).to.deep.equal(['active.0.imported.log']);
    // a restart still knows it, from the imported log
    const again = new DedupeStore(store, WINDOW, Date.now, { shared: false });
    opened.push(again);
    expect(
      await again.has(DedupeStore.key('<recent@example.net>', 'mb-1')),
    ).to.equal(true);
  });
});
