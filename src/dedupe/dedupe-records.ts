// The port every lane checks and records deliveries through: local records (dedupe-store.ts),
// or those composed with the fleet's Redis (fleet-dedupe.ts).

/**
 * What a route's key says before it is posted: `new` (post it; this process now holds it),
 * `duplicate` (delivered within the window: do not post), or `busy` (another instance of the
 * fleet is posting the same message right now: try again later).
 */
export type Claim = 'new' | 'duplicate' | 'busy';

/** Delivered-route records, by the key of pipeline/route-keys.ts. */
export interface DedupeRecords {
  /** Says whether the key may be posted; a `new` key is held until add() or release(). */
  claim(key: string): Promise<Claim>;
  /**
   * A key claim() will be asked for soon (a message next in line): a store whose claims take a
   * round trip (the fleet's Redis) asks now, so that the attempt does not wait for it.
   */
  claimAhead?(key: string): void;
  /** Records a delivery now (the local record is written before this resolves). */
  add(key: string): Promise<void>;
  /** Gives back a claimed key that was not delivered (failed, held, dropped, unparsed). */
  release(key: string): Promise<void>;
  /** Forgets records older than the window; returns how many went (locally). */
  prune(): Promise<number>;
  /** Closes the local logs once the writes queued so far are done. */
  close(): Promise<void>;
}
