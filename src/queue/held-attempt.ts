// Hybrid mode's first attempt, made while the sender waits: the handle its caller files it by.
import type { QueueEntry } from '../spool/queue-entry.js';
import type { AttemptResult } from './attempt-delivery.js';
import type { ResultFiler } from './file-result.js';

/**
 * A fresh message (glossary: src/spool/fresh.ts) the runner holds while its caller makes its
 * first attempt (QueueRunner.attemptNow). The caller decides what becomes of it, exactly once:
 * `file` a result (the whole, or part of it), `fileLate`, `discard` or `release`.
 */
export interface HeldAttempt {
  /** the attempt; its result is not filed yet */
  readonly result: Promise<AttemptResult>;
  /** Files a result of this attempt in the spool: removed, back in the queue, or dead. */
  file(result: AttemptResult): Promise<void>;
  /**
   * The caller stopped waiting (past `delivery.syncTimeoutMs`): the result is filed once the
   * attempt ends, and close() and settled() wait for it like any attempt in flight. A filing
   * that fails goes to `onError`.
   */
  fileLate(onError: (err: unknown) => Promise<unknown>): void;
  /** Removes the message: refused while the sender waited, who hears so. */
  discard(): Promise<void>;
  /** Hands the message back to the queue: its attempt could not be filed. */
  release(): Promise<void>;
}

/** The handle of `entry`'s attempt; `track` registers a late filing with the runner. */
export function heldAttempt(
  entry: QueueEntry,
  result: Promise<AttemptResult>,
  filer: ResultFiler,
  track: (filing: Promise<void>) => void,
): HeldAttempt {
  return {
    result,
    file: done => filer.file(done),
    fileLate(onError) {
      // the handling of a failed filing (a release) is waited for too
      const filing = result
        .then(done => filer.file(done))
        .catch(onError)
        .then(
          () => undefined,
          () => undefined,
        );
      track(filing);
    },
    discard: () => filer.discard(entry.id),
    release: () => filer.release(entry.id),
  };
}
