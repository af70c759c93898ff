// The fuzzer's seeded randomness: mulberry32, so one seed gives the same cases on every machine,
// and a case's own generator derived from (seed, case number), so case N is the same whether it
// runs alone or among thousands.

/** A seeded generator and the draws the mutators need. */
export interface Rng {
  /** a float in [0, 1) */
  next(): number;
  /** an integer in [min, max] (both included) */
  int(min: number, max: number): number;
  /** true with probability `p` */
  chance(p: number): boolean;
  /** one element of a non-empty list */
  pick<T>(items: readonly T[]): T;
  /**
   * An integer in [min, max] whose logarithm is uniform: as many draws between 1 KiB and
   * 10 KiB as between 100 KiB and 1 MiB, so sizes near a limit come up without most being huge.
   */
  logInt(min: number, max: number): number;
  /** `length` random bytes */
  bytes(length: number): Buffer;
}

/** mulberry32: 32 bits of state, a full period of 2^32, fast, good enough for fuzzing. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator of the draws above from a seed (any integer; taken modulo 2^32). */
export function createRng(seed: number): Rng {
  const next = mulberry32(seed);
  const int = (min: number, max: number) =>
    min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    chance: p => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length - 1)] as T;
    },
    logInt(min, max) {
      const low = Math.log(Math.max(1, min));
      const high = Math.log(Math.max(1, max));
      const value = Math.round(Math.exp(low + next() * (high - low)));
      return Math.min(max, Math.max(min, value));
    },
    bytes(length) {
      const out = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
  };
}

/**
 * The seed of case `index` of a run seeded `seed`: both mixed (a 32-bit finaliser), so that
 * neighbouring cases and neighbouring seeds give unrelated streams.
 */
export function caseSeed(seed: number, index: number): number {
  let h = (seed >>> 0) ^ Math.imul(index + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A seed for a run that was given none: printed at start so the run can be repeated. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 4294967296) >>> 0;
}
