// Unit tables for DueHeap: the earliest due time first, whatever the order of pushes.
import { expect } from 'chai';
import { DueHeap } from '../../src/queue/due-heap.js';

/** A small deterministic generator of integers in [0, max). */
function lcg(seed: number): (max: number) => number {
  let state = seed;
  return max => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % max;
  };
}

function drain(heap: DueHeap): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let top = heap.pop(); top; top = heap.pop()) out.push(top);
  return out;
}

describe('DueHeap', () => {
  /** [name, pushes, expected pops in order] */
  const ROWS: Array<
    [string, Array<[number, string]>, Array<[number, string]>]
  > = [
    ['empty', [], []],
    ['one', [[5, 'a']], [[5, 'a']]],
    [
      'ascending pushes',
      [
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ],
      [
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ],
    ],
    [
      'descending pushes',
      [
        [3, 'c'],
        [2, 'b'],
        [1, 'a'],
      ],
      [
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ],
    ],
    [
      'mixed pushes',
      [
        [50, 'e'],
        [10, 'a'],
        [40, 'd'],
        [20, 'b'],
        [30, 'c'],
        [0, 'z'],
      ],
      [
        [0, 'z'],
        [10, 'a'],
        [20, 'b'],
        [30, 'c'],
        [40, 'd'],
        [50, 'e'],
      ],
    ],
    [
      'the same id pushed again keeps both (the caller skips the stale one)',
      [
        [30, 'x'],
        [10, 'x'],
        [20, 'y'],
      ],
      [
        [10, 'x'],
        [20, 'y'],
        [30, 'x'],
      ],
    ],
    [
      'negative and huge times',
      [
        [Number.MAX_SAFE_INTEGER, 'late'],
        [-5, 'past'],
        [Date.UTC(2025, 0, 1), 'now'],
      ],
      [
        [-5, 'past'],
        [Date.UTC(2025, 0, 1), 'now'],
        [Number.MAX_SAFE_INTEGER, 'late'],
      ],
    ],
  ];

  for (const [name, pushes, expected] of ROWS) {
    it(name, () => {
      const heap = new DueHeap();
      for (const [due, id] of pushes) heap.push(due, id);
      expect(heap.size).to.equal(pushes.length);
      expect(heap.peek()).to.deep.equal(expected[0]);
      expect(drain(heap)).to.deep.equal(expected);
      expect(heap.size).to.equal(0);
      expect(heap.peek()).to.equal(undefined);
      expect(heap.pop()).to.equal(undefined);
    });
  }

  it('equal due times all come out, before any later one', () => {
    const heap = new DueHeap();
    for (const id of ['a', 'b', 'c', 'd']) heap.push(7, id);
    heap.push(3, 'first');
    heap.push(9, 'last');
    const out = drain(heap);
    expect(out[0]).to.deep.equal([3, 'first']);
    expect(out.slice(1, 5).map(([due]) => due)).to.deep.equal([7, 7, 7, 7]);
    expect(out.slice(1, 5).map(([, id]) => id)).to.have.members([
      'a',
      'b',
      'c',
      'd',
    ]);
    expect(out[5]).to.deep.equal([9, 'last']);
  });

  for (const seed of [1, 7, 2024]) {
    it(`interleaved pushes and pops match a sorted list (seed ${seed})`, () => {
      const next = lcg(seed);
      const heap = new DueHeap();
      const reference: number[] = [];
      for (let step = 0; step < 2000; step++) {
        if (reference.length > 0 && next(3) === 0) {
          reference.sort((a, b) => a - b);
          const expected = reference.shift();
          const top = heap.pop();
          expect(top?.[0]).to.equal(expected);
        } else {
          const due = next(500);
          heap.push(due, `id-${step}`);
          reference.push(due);
        }
        expect(heap.size).to.equal(reference.length);
      }
      const rest = drain(heap).map(([due]) => due);
      expect(rest).to.deep.equal(reference.sort((a, b) => a - b));
    });
  }
});
