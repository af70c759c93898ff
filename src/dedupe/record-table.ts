// The dedupe records in memory: an open-addressing hash table in typed arrays, 12 bytes of key
// and a time per record, and no JavaScript object per record. A Map of two million records
// took 146 MiB of heap, and each full collection of V8 traced every entry (105 ms on this
// machine); these arrays take 21 bytes a slot (84 MiB for two million records), are never
// traced (a full collection: 5 ms), and need no allocation per record.

import { randomBytes } from 'node:crypto';

const EMPTY = 0;
const LIVE = 1;
/** a deleted record's slot: probing goes on past it */
const GONE = 2;
const MIN_CAPACITY = 16;
/** the share of slots in use (live or gone) past which the table is rebuilt */
const MAX_LOAD = 0.75;
/** buckets of the time histogram that finds the oldest records to evict */
const BUCKETS = 4096;

/** A record key: 16 base64url characters, 96 bits (DedupeStore.key). */
const KEY = /^[A-Za-z0-9_-]{16}$/;
/** an odd multiplier: the slot is the top bits of key word times it (Fibonacci hashing) */
const MULTIPLIER = 0x9e3779b1;

export class RecordTable {
  private state: Uint8Array;
  /** three 32-bit words of key per slot */
  private words: Uint32Array;
  private times: Float64Array;
  private mask: number;
  /** 32 minus the bits of a slot number: a slot is the top bits of a 32-bit product */
  private shift: number;
  /**
   * Mixed into the key's first word: keys are SHA-256 bits, but of Message-IDs a sender
   * chooses, who could search for ones that crowd a run of slots without this process's seed
   */
  private readonly seed = randomBytes(4).readUInt32LE(0);
  private live = 0;
  /** slots live or gone: what probing has to walk past */
  private used = 0;
  /** the words of the key being looked up (one allocation for the table's life) */
  private readonly probe = new Uint32Array(3);

  constructor(capacity = MIN_CAPACITY) {
    const slots = powerOfTwoAtLeast(Math.max(MIN_CAPACITY, capacity));
    this.state = new Uint8Array(slots);
    this.words = new Uint32Array(slots * 3);
    this.times = new Float64Array(slots);
    this.mask = slots - 1;
    this.shift = 32 - Math.log2(slots);
  }

  /** Records held. */
  get size(): number {
    return this.live;
  }

  /** The time recorded for `key`, or undefined. */
  get(key: string): number | undefined {
    const slot = this.find(key);
    return slot < 0 ? undefined : this.times[slot];
  }

  /** Records `key` at `time`, over an earlier time if it has one. */
  set(key: string, time: number): void {
    const found = this.find(key);
    if (found >= 0) {
      this.times[found] = time;
      return;
    }
    if (this.used + 1 > (this.mask + 1) * MAX_LOAD) this.rebuild();
    const a = this.probe[0]!;
    const b = this.probe[1]!;
    const c = this.probe[2]!;
    let slot = this.home(a);
    while (this.state[slot] === LIVE) slot = (slot + 1) & this.mask;
    if (this.state[slot] === EMPTY) this.used++;
    this.state[slot] = LIVE;
    this.words[slot * 3] = a;
    this.words[slot * 3 + 1] = b;
    this.words[slot * 3 + 2] = c;
    this.times[slot] = time;
    this.live++;
  }

  /** Forgets `key`; false when it was not there. */
  delete(key: string): boolean {
    const slot = this.find(key);
    if (slot < 0) return false;
    this.remove(slot);
    return true;
  }

  /** Forgets every record whose time `expired` says yes to; returns how many. */
  deleteWhere(expired: (time: number) => boolean): number {
    let count = 0;
    for (let slot = 0; slot <= this.mask; slot++) {
      if (this.state[slot] === LIVE && expired(this.times[slot]!)) {
        this.remove(slot);
        count++;
      }
    }
    return count;
  }

  /** Forgets the `count` records with the oldest times (ties: any of them). */
  evictOldest(count: number): void {
    if (count <= 0) return;
    if (count >= this.live) {
      this.deleteWhere(() => true);
      return;
    }
    let min = Infinity;
    let max = -Infinity;
    for (let slot = 0; slot <= this.mask; slot++) {
      if (this.state[slot] !== LIVE) continue;
      const time = this.times[slot]!;
      if (!Number.isFinite(time)) continue;
      if (time < min) min = time;
      if (time > max) max = time;
    }
    if (min > max) min = max = 0;
    // a histogram of the times finds the bucket the oldest `count` end in, in two passes;
    // a time that is not finite counts as the oldest (NaN, -Infinity) or the newest
    const width = (max - min) / BUCKETS || 1;
    const bucketOf = (time: number) =>
      !(time > min)
        ? 0
        : time >= max
          ? BUCKETS - 1
          : Math.min(BUCKETS - 1, Math.floor((time - min) / width));
    const counts = new Uint32Array(BUCKETS);
    for (let slot = 0; slot <= this.mask; slot++) {
      if (this.state[slot] === LIVE) counts[bucketOf(this.times[slot]!)]!++;
    }
    let edge = 0;
    let below = 0;
    while (below + counts[edge]! < count) below += counts[edge++]!;
    // all of the buckets below `edge`, and the oldest of the edge bucket
    const inEdge: number[] = [];
    for (let slot = 0; slot <= this.mask; slot++) {
      if (this.state[slot] !== LIVE) continue;
      const bucket = bucketOf(this.times[slot]!);
      if (bucket < edge) this.remove(slot);
      else if (bucket === edge) inEdge.push(slot);
    }
    inEdge.sort((x, y) => this.times[x]! - this.times[y]! || 0);
    for (const slot of inEdge.slice(0, count - below)) this.remove(slot);
  }

  /** Where probing for a key whose first word is `a` starts. */
  private home(a: number): number {
    return Math.imul(a ^ this.seed, MULTIPLIER) >>> this.shift;
  }

  private remove(slot: number): void {
    this.state[slot] = GONE;
    this.live--;
  }

  /** The slot holding `key`, or -1; leaves the key's words in `probe`. */
  private find(key: string): number {
    keyWords(key, this.probe);
    const a = this.probe[0]!;
    const b = this.probe[1]!;
    const c = this.probe[2]!;
    for (let slot = this.home(a); ; slot = (slot + 1) & this.mask) {
      const state = this.state[slot];
      if (state === EMPTY) return -1;
      if (
        state === LIVE &&
        this.words[slot * 3] === a &&
        this.words[slot * 3 + 1] === b &&
        this.words[slot * 3 + 2] === c
      ) {
        return slot;
      }
    }
  }

  /**
   * Into new arrays with the gone slots dropped, at least twice as many slots as live records
   * (so from 21 to 84 bytes a record; 84 MiB for two million).
   */
  private rebuild(): void {
    const { state, words, times } = this;
    const slots = powerOfTwoAtLeast(Math.max(MIN_CAPACITY, this.live * 2));
    this.state = new Uint8Array(slots);
    this.words = new Uint32Array(slots * 3);
    this.times = new Float64Array(slots);
    this.mask = slots - 1;
    this.shift = 32 - Math.log2(slots);
    this.used = this.live;
    for (let old = 0; old < state.length; old++) {
      if (state[old] !== LIVE) continue;
      let slot = this.home(words[old * 3]!);
      while (this.state[slot] !== EMPTY) slot = (slot + 1) & this.mask;
      this.state[slot] = LIVE;
      this.words.set(words.subarray(old * 3, old * 3 + 3), slot * 3);
      this.times[slot] = times[old]!;
    }
  }
}

const decoded = Buffer.alloc(12);

/** The 96 bits of a base64url key as three words (the key is a hash: any word spreads well). */
function keyWords(key: string, into: Uint32Array): void {
  // 16 base64url characters are exactly 96 bits. Checked first: Node's decoder also takes
  // base64's '+' and '/', and the low byte of any character, so other strings would alias keys
  if (!KEY.test(key) || decoded.write(key, 'base64url') !== 12) {
    throw new RangeError(`not a dedupe record key: ${key}`);
  }
  into[0] = decoded.readUInt32LE(0);
  into[1] = decoded.readUInt32LE(4);
  into[2] = decoded.readUInt32LE(8);
}

function powerOfTwoAtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
