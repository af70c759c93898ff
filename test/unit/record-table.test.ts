// RecordTable: the dedupe records' hash table in typed arrays, checked against a Map.
import { expect } from 'chai';
import { RecordTable } from '../../src/dedupe/record-table.js';
import { DedupeStore } from '../../src/dedupe/dedupe-store.js';

const key = (n: number) => DedupeStore.key(`<m${n}@example.net>`, 'mb');

/** A small deterministic generator (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('RecordTable', () => {
  it('set, get, update and delete', () => {
    const table = new RecordTable();
    expect(table.get(key(1))).to.equal(undefined);
    table.set(key(1), 100);
    table.set(key(2), 0);
    expect([table.get(key(1)), table.get(key(2)), table.size]).to.deep.equal([
      100, 0, 2,
    ]);
    table.set(key(1), 300);
    expect([table.get(key(1)), table.size]).to.deep.equal([300, 2]);
    expect(table.delete(key(1))).to.equal(true);
    expect(table.delete(key(1))).to.equal(false);
    expect([table.get(key(1)), table.get(key(2)), table.size]).to.deep.equal([
      undefined,
      0,
      1,
    ]);
  });

  const badKeys: Array<[string, string]> = [
    ['too short', 'abc'],
    ['too long', `${key(1)}A`],
    ['outside the alphabet', '!!!!!!!!!!!!!!!!'],
    ['base64 padding', 'AAAAAAAAAAAAAA=='],
  ];
  for (const [name, bad] of badKeys) {
    it(`a key that is not 16 base64url characters throws: ${name}`, () => {
      expect(() => new RecordTable().set(bad, 1)).to.throw(RangeError);
    });
  }

  it('grows past its first capacity, and keeps every record through the rebuilds', () => {
    const table = new RecordTable(16);
    for (let n = 0; n < 10_000; n++) table.set(key(n), n);
    expect(table.size).to.equal(10_000);
    for (let n = 0; n < 10_000; n += 97) expect(table.get(key(n))).to.equal(n);
    expect(table.get(key(10_000))).to.equal(undefined);
  });

  it('deleteWhere forgets what the predicate picks and counts it', () => {
    const table = new RecordTable();
    for (let n = 0; n < 100; n++) table.set(key(n), n);
    expect(table.deleteWhere(time => time < 40)).to.equal(40);
    expect(table.size).to.equal(60);
    expect(table.get(key(39))).to.equal(undefined);
    expect(table.get(key(40))).to.equal(40);
  });

  const evictions: Array<[string, number[], number, number[]]> = [
    ['distinct times', [5, 1, 4, 2, 3], 2, [3, 4, 5]],
    ['all alike: any of them, as many as asked', [7, 7, 7, 7], 3, [7]],
    ['nothing', [1, 2], 0, [1, 2]],
    ['more than there are', [1, 2], 5, []],
    ['one more than the times spread over', [0, 1e12, 2, 1e12 - 1], 3, [1e12]],
  ];
  for (const [name, times, count, left] of evictions) {
    it(`evictOldest: ${name}`, () => {
      const table = new RecordTable();
      times.forEach((time, n) => table.set(key(n), time));
      table.evictOldest(count);
      const kept = times
        .map((_, n) => table.get(key(n)))
        .filter((t): t is number => t !== undefined)
        .sort((a, b) => a - b);
      expect(kept).to.deep.equal(left);
      expect(table.size).to.equal(left.length);
    });
  }

  it('evictOldest over many records: exactly the oldest go', () => {
    const table = new RecordTable();
    const next = random(7);
    const times = Array.from({ length: 5000 }, () => Math.floor(next() * 1e9));
    times.forEach((time, n) => table.set(key(n), time));
    table.evictOldest(1234);
    const threshold = [...times].sort((a, b) => a - b)[1234]!;
    expect(table.size).to.equal(5000 - 1234);
    times.forEach((time, n) => {
      if (time > threshold) expect(table.get(key(n))).to.equal(time);
      if (time < threshold) expect(table.get(key(n))).to.equal(undefined);
    });
  });

  it('random sets, deletes and evictions agree with a Map', () => {
    const next = random(42);
    const table = new RecordTable();
    const model = new Map<string, number>();
    for (let step = 0; step < 50_000; step++) {
      const k = key(Math.floor(next() * 3000));
      const roll = next();
      if (roll < 0.6) {
        const time = Math.floor(next() * 1e6);
        table.set(k, time);
        model.set(k, time);
      } else if (roll < 0.95) {
        expect(table.delete(k)).to.equal(model.delete(k));
      } else if (roll < 0.999) {
        expect(table.get(k)).to.equal(model.get(k));
      } else {
        const limit = Math.floor(next() * 1e6);
        let gone = 0;
        for (const [mk, time] of model) {
          if (time < limit) {
            model.delete(mk);
            gone++;
          }
        }
        expect(table.deleteWhere(time => time < limit)).to.equal(gone);
      }
      expect(table.size).to.equal(model.size);
    }
    for (const [k, time] of model) expect(table.get(k)).to.equal(time);
  });

  describe('edges', () => {
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
});
