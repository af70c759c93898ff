// An attempt's end in the spool: its result filed (removed, dropped, back to queue/, dead or held) with
// the one outcome log line; or the message handed back (release) or removed (discard) without one.
import type { RetryConfig } from '../config/schema.js';
import { describe } from '../auth/verdict.js';
import { DRY_RUN_OUTCOME } from '../pipeline/payload-sink.js';
import { errorFields, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Spool } from '../spool/spool.js';
import type { AttemptResult } from './attempt-delivery.js';
import type { IntakeBuffer, Ready } from './intake-buffer.js';
import type { DeliveryPause } from './pause.js';
import type { Schedule } from './schedule.js';

export interface ResultFilerDeps {
  spool: Spool;
  log: Logger;
  metrics: Metrics;
  retry: RetryConfig;
  now: () => number;
  /** the fresh messages this process holds (glossary: src/spool/fresh.ts) */
  buffer: IntakeBuffer;
  schedule: Schedule;
  pause: DeliveryPause;
  /** the sink writes bodies to disk (no token): "delivered" is said as not posted */
  dryRun: boolean;
}

/** Files results for the runner and for hybrid mode's first attempts alike. */
export class ResultFiler {
  constructor(private readonly deps: ResultFilerDeps) {}

  /** Files an attempt's result in the spool: removed, back in the queue, dead, or held. */
  async file(result: AttemptResult): Promise<void> {
    const { entry, outcome } = result;
    const auth = result.auth ?? entry.auth;
    const { spool, buffer, metrics } = this.deps;
    // no child logger: one per message costs more than the line it writes
    const log = this.deps.log;
    // the routes a policy dropped are named on the line, whatever became of the others
    const dropped = droppedRoutes(entry.routes);
    const fields = {
      queueId: entry.id,
      messageId: result.messageId ?? entry.messageId,
      attempts: entry.attempts,
      routes: entry.routes.length,
      // "did mail for support@ arrive?": the recipients (Postfix's to=), their mailboxes, and
      // how long since the message was accepted, in seconds (Postfix's delay=)
      to: entry.envelope.rcptTo,
      mailboxes: mailboxesOf(entry.routes),
      delay: Math.max(0, Math.round(this.deps.now() - entry.createdAt) / 1000),
      // the sender's judgement, when a route asked for one (auth/verdict.ts)
      ...(auth
        ? { senderAuth: auth.verdict, authResults: describe(auth) }
        : {}),
      ...(dropped && outcome !== 'dropped' ? { dropped } : {}),
    };
    metrics.deliveries.inc({ outcome });
    if (result.dropped) metrics.dropped.inc(result.dropped.length);
    // a pause starting parks the fresh messages waiting: done before this one's outcome line
    await this.notePause(result);
    const fresh = buffer.isFresh(entry.id);
    if (outcome === 'delivered' || outcome === 'dropped') {
      if (fresh) await spool.removeFresh(entry.id);
      else await spool.remove(entry.id, 'active');
      buffer.forget(entry.id);
      if (outcome === 'dropped') {
        log.info('message dropped', { ...fields, outcome, reason: dropped });
      } else if (this.deps.dryRun) {
        log.warn(DRY_RUN_OUTCOME, { ...fields, outcome: 'dry-run' });
      } else {
        // accepted to delivered, retries and pauses included
        metrics.deliverySeconds.observe(
          Math.max(0, this.deps.now() - entry.createdAt) / 1000,
        );
        log.info('message delivered', { ...fields, outcome });
      }
    } else if (outcome === 'dead') {
      if (fresh) await spool.park(entry, 'dead');
      else await spool.move(entry, 'active', 'dead');
      buffer.forget(entry.id);
      metrics.spool.inc({ state: 'dead' });
      log.warn('message dead', {
        ...fields,
        outcome,
        reason: entry.dead?.reason,
      });
    } else if (outcome === 'held') {
      // like dead: out of delivery, kept until replayed, purged or delivery.heldRetentionMs
      if (fresh) await spool.park(entry, 'held');
      else await spool.move(entry, 'active', 'held');
      buffer.forget(entry.id);
      metrics.spool.inc({ state: 'held' });
      log.info('message held', {
        ...fields,
        outcome,
        reason: entry.held?.reason,
      });
    } else {
      if (fresh) await spool.park(entry, 'queue');
      else await spool.move(entry, 'active', 'queue');
      buffer.forget(entry.id);
      this.deps.schedule.add(entry.id, entry.nextAttemptAt, entry.createdAt);
      log.warn('delivery deferred', {
        ...fields,
        outcome,
        error: entry.lastError,
        nextAttemptAt: new Date(entry.nextAttemptAt).toISOString(),
      });
    }
  }

  /**
   * Hands a claimed entry back to queue/ after an attempt that could not be filed (a spool or
   * dedupe I/O error), to be tried again after a retry delay rather than wait in active/ for
   * the next start. The state on disk is the one from before that attempt. Call it once the
   * attempt is over; the next scan schedules the entry.
   */
  async release(id: string): Promise<void> {
    const retry = this.deps.retry;
    const delay = Math.min(retry.initialDelayMs, retry.maxDelayMs);
    const fresh = this.deps.buffer.get(id);
    if (fresh) {
      // parked due after the delay, or its newer state on the claim released to queue/
      await this.deps.buffer.park(fresh, this.deps.now() + delay);
      return;
    }
    try {
      if (!(await this.deps.spool.release(id))) return;
    } catch (err) {
      this.deps.log.error('could not hand a message back to the queue', {
        queueId: id,
        ...errorFields(err),
      });
      return;
    }
    // the next scan schedules it, not before this
    this.deps.schedule.hold(id, this.deps.now() + delay);
  }

  /** Removes a fresh message held for hybrid mode: refused while the sender waited. */
  async discard(id: string): Promise<void> {
    await this.deps.spool.removeFresh(id);
    this.deps.buffer.forget(id);
  }

  /** Starts or ends a pause; resolves once the fresh messages a new pause parks are parked. */
  private async notePause(result: AttemptResult): Promise<void> {
    let waiting: Ready[] = [];
    const starting = this.deps.pause.note(result, () => {
      // they would wait out the pause in the claim folder: park them where all can see them
      waiting = this.deps.buffer.drain();
    });
    if (starting) await this.deps.buffer.parkAll(waiting);
  }
}

/** The routes a policy dropped, `route N: reason` each, joined with '; '; undefined for none. */
function droppedRoutes(
  routes: AttemptResult['entry']['routes'],
): string | undefined {
  const dropped = routes.flatMap(r =>
    r.dropped === undefined ? [] : [`route ${r.index}: ${r.dropped}`],
  );
  return dropped.length ? dropped.join('; ') : undefined;
}

/** The API mailboxes of a message's routes, each once (a route without one is left out). */
function mailboxesOf(
  routes: ReadonlyArray<{ route: { mailbox_id?: string } }>,
): string[] {
  return [
    ...new Set(
      routes.flatMap(r => (r.route.mailbox_id ? [r.route.mailbox_id] : [])),
    ),
  ];
}
