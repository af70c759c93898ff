// RecordTable and the DedupeStore on it: keys that alias, times that are not finite, and the
// record just added at the cap (a review's findings, each first shown failing).
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DedupeStore } from '../../src/spool/dedupe-store.js';
import { RecordTable } from '../../src/spool/record-table.js';

const key = (n: number) => DedupeStore.key(`<r${n}@example.net>`, 'mb');

/** mulberry32: a failure repeats */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('RecordTable edges', () => {
  // Node's base64url decoder also takes the base64 alphabet ('+', '/') and reads only the low
  // byte of a character past U+00FF, so these decode to another key's 96 bits
  const aliases: Array<[string, string, string]> = [
    ["'+' (base64, not base64url)", 'AAAAAAAAAAAAAAA+', 'AAAAAAAAAAAAAAA-'],
    ["'/' (base64, not base64url)", 'AAAAAAAAAAAAAAA/', 'AAAAAAAAAAAAAAA_'],
    [
      'U+0141, whose low byte is A',
      'AAAAAAAAAAAAAAA\u0141',
      'AAAAAAAAAAAAAAAA',
    ],
    [
      'U+012D, whose low byte is -',
      'AAAAAAAAAAAAAAA\u012d',
      'AAAAAAAAAAAAAAA-',
    ],
  ];
  for (const [name, bad, twin] of aliases) {
    it(`a key that is not 16 base64url characters throws, and meets no other key: ${name}`, () => {
      const table = new RecordTable();
      table.set(twin, 1);
      let threw = false;
      try {
        // either refused, or a record of its own
        expect(table.get(bad)).to.equal(undefined);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        threw = true;
      }
      expect(threw, `${JSON.stringify(bad)} read ${twin}'s record`).to.equal(
        true,
      );
    });
  }

  it('evictOldest forgets exactly `count` records when one time is -Infinity', () => {
    const table = new RecordTable();
    [-Infinity, 1, 2, 3].forEach((time, n) => table.set(key(n), time));
    table.evictOldest(2);
    expect(table.size).to.equal(2);
    expect([table.get(key(2)), table.get(key(3))]).to.deep.equal([2, 3]);
  });

  it('evictOldest forgets exactly `count` records when the newest times are Infinity', () => {
    const table = new RecordTable();
    [1, 5, Infinity, Infinity].forEach((time, n) => table.set(key(n), time));
    table.evictOldest(3);
    expect(table.size).to.equal(1);
  });

  // checked and fine: both passes of evictOldest compute the same bucket from the same time,
  // and floor((t - min) / width) is monotonic, so the edge bucket never miscounts
  it('evictOldest takes exactly the oldest, whatever the spread of the times', () => {
    const next = random(11);
    const spreads: Array<(n: number) => number> = [
      () => 1.7e12 + Math.floor(next() * 3) * 0.1,
      n => 1e15 + n * 0.125,
      () => -1e300 + next() * 1e290,
      n => (n % 3 === 0 ? 0 : 1e-300 * next()),
      n => (n === 0 ? -1e200 : n === 1 ? 1e200 : next()),
      n => Math.floor(n / 7) * (1 / 3),
    ];
    for (const spread of spreads) {
      for (const count of [1, 17, 250, 499]) {
        const table = new RecordTable();
        const times = Array.from({ length: 500 }, (_, n) => spread(n));
        times.forEach((time, n) => table.set(key(n), time));
        table.evictOldest(count);
        expect(table.size).to.equal(500 - count);
        const kept = times
          .map((_, n) => table.get(key(n)))
          .filter((t): t is number => t !== undefined)
          .sort((a, b) => a - b);
        expect(kept).to.deep.equal(
          [...times].sort((a, b) => a - b).slice(count),
        );
      }
    }
  });

  // checked and fine: gone slots never fill the table (used counts them, rebuild resets it)
  it('deletes and evictions without inserts, then inserts after a rebuild to fewer slots', () => {
    const table = new RecordTable();
    for (let n = 0; n < 3000; n++) table.set(key(n), n);
    table.evictOldest(2990);
    for (let n = 0; n < 2995; n++) table.delete(key(n));
    expect(table.size).to.equal(5);
    for (let n = 0; n < 3000; n++) {
      expect(table.get(key(n + 9000))).to.equal(undefined);
    }
    for (let n = 0; n < 3000; n++) {
      table.set(key(n + 9000), n);
      table.delete(key(n + 9000));
    }
    expect(table.size).to.equal(5);
  });
});

describe('DedupeStore at maxRecords', () => {
  const WINDOW = 60_000;
  const T0 = Date.UTC(2025, 0, 1);
  let dir: string;
  const opened: DedupeStore[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-review-rt-'));
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });
  function open(clock: { now: number }, maxRecords: number): DedupeStore {
    const s = new DedupeStore(join(dir, 'dedupe'), WINDOW, () => clock.now, {
      shared: false,
      maxRecords,
    });
    opened.push(s);
    return s;
  }

  it('a delivery recorded in the same millisecond as the others is still known right after its add', async () => {
    // several deliveries within one tick of the clock; the cap forgets a few at once
    const clock = { now: T0 };
    const s = open(clock, 16);
    const forgotten: number[] = [];
    for (let n = 0; n < 64; n++) {
      await s.add(key(n));
      if (!(await s.has(key(n)))) forgotten.push(n);
    }
    expect(
      forgotten,
      'records evicted by the add that made them',
    ).to.deep.equal([]);
  });

  it('a delivery recorded after the clock stepped back is still known right after its add', async () => {
    const clock = { now: T0 };
    const s = open(clock, 16);
    for (let n = 0; n < 16; n++) {
      await s.add(key(n));
      clock.now += 100;
    }
    // NTP steps the clock back a second
    clock.now -= 1000 + 100 * 16;
    await s.add(key(100));
    expect(await s.has(key(100))).to.equal(true);
  });
});
