// RecordTable: the dedupe records' hash table in typed arrays, checked against a Map.
import { expect } from 'chai';
import { RecordTable } from '../../src/spool/record-table.js';
import { DedupeStore } from '../../src/spool/dedupe-store.js';

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
});
