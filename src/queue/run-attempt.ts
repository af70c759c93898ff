// One attempt the runner starts: a fresh message or a due entry of queue/, then filed or released.
import { errorFields, type Logger } from '../observability/logger.js';
import { dedupeKey } from '../pipeline/route-keys.js';
import { pendingOf, type QueueEntry } from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';
import {
  attemptDelivery,
  type AttemptDeps,
  type AttemptResult,
} from './attempt-delivery.js';
import type { ResultFiler } from './file-result.js';
import type { IntakeBuffer, Ready } from './intake-buffer.js';
import type { Schedule } from './schedule.js';

export interface AttemptsDeps {
  spool: Spool;
  log: Logger;
  now: () => number;
  attempt: AttemptDeps;
  /** the fresh messages this process holds (glossary: src/spool/fresh.ts) */
  buffer: IntakeBuffer;
  schedule: Schedule;
  filer: ResultFiler;
}

/** The attempts of the runner's pump (and hybrid mode's, through `claimed`). */
export class Attempts {
  constructor(private readonly deps: AttemptsDeps) {}

  /**
   * Attempts a message this process holds claimed: fresh or in active/. Resolves with the
   * result before it is filed.
   */
  claimed(entry: QueueEntry, raw?: Buffer): Promise<AttemptResult> {
    const spool = this.deps.spool;
    // a journaled message's entry says where in its segment it lies (rawLength)
    const path = !this.deps.buffer.isFresh(entry.id)
      ? spool.messagePath(entry.id)
      : entry.rawLength !== undefined
        ? spool.freshRawPath(entry.id)
        : spool.freshPath(entry.id);
    return attemptDelivery(entry, path, this.deps.attempt, raw);
  }

  /** Lets the dedupe store ask ahead for the keys of a message whose attempt is coming. */
  claimAhead(entry: QueueEntry): void {
    const dedupe = this.deps.attempt.dedupe;
    if (!dedupe?.claimAhead) return;
    for (const group of pendingOf(entry)) {
      const key = dedupeKey(entry, group);
      if (key) dedupe.claimAhead(key);
    }
  }

  /** The first attempt of a fresh message: no claim, no read of its state. */
  async fresh({ entry, raw }: Ready): Promise<void> {
    try {
      await this.deps.filer.file(await this.claimed(entry, raw));
    } catch (err) {
      this.deps.log.error('delivery attempt failed', {
        queueId: entry.id,
        ...errorFields(err),
      });
      await this.deps.filer.release(entry.id);
    }
  }

  /** Claims and attempts one entry; `probe` attempts it even before its time (paused delivery). */
  async queued(id: string, probe: boolean): Promise<void> {
    const { spool, log, filer } = this.deps;
    try {
      const entry = await spool.claim(id);
      if (!entry) return; // taken by a `queue` command, or purged
      if (!probe && entry.nextAttemptAt > this.deps.now()) {
        // another worker of the cluster rescheduled it since we learnt its time: not yet
        await spool.release(id);
        this.deps.schedule.add(id, entry.nextAttemptAt, entry.createdAt);
        log.debug('not due yet: rescheduled elsewhere', {
          queueId: id,
          nextAttemptAt: new Date(entry.nextAttemptAt).toISOString(),
        });
        return;
      }
      await filer.file(await this.claimed(entry));
    } catch (err) {
      // a spool or dedupe I/O error: back to the queue, tried again after a retry delay
      log.error('delivery attempt failed', {
        queueId: id,
        ...errorFields(err),
      });
      await filer.release(id);
    }
  }
}
