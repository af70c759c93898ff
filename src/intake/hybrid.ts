// Hybrid mode: one attempt while the sender waits, and LMTP's per-recipient replies from it.
import type { Config } from '../config/schema.js';
import type { PayloadSink } from '../pipeline/payload-sink.js';
import { PermanentError, TemporaryError } from '../errors/bridge-error.js';
import { toSmtpReply, type SmtpReplyError } from '../errors/to-smtp-reply.js';
import type { Logger } from '../observability/logger.js';
import { errorFields } from '../observability/logger.js';
import { heldInfo, type AttemptResult } from '../pipeline/decide.js';
import type { HeldAttempt } from '../queue/held-attempt.js';
import type { QueueEntry, RouteState } from '../spool/queue-entry.js';
import type { Accepted } from './intake.js';
import { withinTime } from '../lib/time-limit.js';

/** What hybrid mode reads: its timeout and LMTP, the sink's kind, the log. */
export interface HybridDeps {
  config: Pick<Config, 'smtp' | 'routes' | 'delivery' | 'mapping'>;
  sink: PayloadSink;
  log: Logger;
}

/**
 * Hybrid: one attempt while the sender waits; a refusal goes back to the sender as 554. With
 * LMTP each recipient is answered for its own route: those of a route the API refused for good
 * hear 554 at once, the others 250 (see splitRefused). `held`: from QueueRunner.attemptNow.
 */
export async function attemptWhileWaiting(
  held: HeldAttempt,
  entry: QueueEntry,
  deps: HybridDeps,
  queued: Accepted,
): Promise<Accepted> {
  const attempt = held.result;
  // the message is stored: when its attempt cannot be filed, the queue takes it from here
  const release = async (err: unknown): Promise<void> => {
    deps.log.error('hybrid attempt failed', {
      queueId: entry.id,
      ...errorFields(err),
    });
    await held.release();
  };
  const failed = async (err: unknown): Promise<Accepted> => {
    await release(err);
    return queued;
  };
  let result: AttemptResult | null;
  try {
    result = await withinTime(
      attempt,
      deps.config.delivery.syncTimeoutMs,
      () => null,
    );
  } catch (err) {
    return failed(err);
  }
  if (!result) {
    // the attempt goes on; its result is filed like any worker's
    held.fileLate(failed);
    return queued;
  }
  // a route held by its policy is kept (held/ or dead/ with it), never refused to the sender
  const nothingKept = result.entry.routes.every(
    r => r.status !== 'delivered' && r.status !== 'held',
  );
  if (result.outcome === 'dead' && nothingKept) {
    await held.discard();
    throw new PermanentError(result.entry.lastError ?? 'refused by the API');
  }
  const split = deps.config.smtp.lmtp ? splitRefused(result) : null;
  try {
    await held.file(split?.kept ?? result);
  } catch (err) {
    if (!split) return failed(err);
    // the refusals stand, and what the API took it has; the queue finishes the rest. Should
    // the state without the refused routes not have reached the disk, they are tried again:
    // refused again, they end in dead/; taken this time, their recipients, told 554, get the
    // message after all. Never lost, which a 250 for a route then dropped could be.
    await release(err);
  }
  if (split) return perRecipientReplies(entry, split, result);
  if (result.outcome === 'dropped') {
    // the filer has logged and counted it
    const id = entry.id;
    const messageId = result.messageId ?? entry.messageId;
    return { reply: `OK: dropped as ${id}`, outcome: 'dropped', messageId };
  }
  if (result.outcome !== 'delivered') return queued;
  return {
    reply: `OK: delivered as ${entry.id}`,
    outcome: deps.sink.kind === 'dry-run' ? 'dry-run' : 'delivered',
    messageId: result.messageId ?? entry.messageId,
  };
}

/** A hybrid attempt's result with the routes the API refused for good taken out. */
export interface SplitResult {
  /** what is filed: the other routes, delivered, held or waiting for a retry; nothing for dead/ */
  kept: AttemptResult;
  refused: RouteState[];
}

/**
 * LMTP, hybrid mode: the routes the attempt saw refused for good, split from the others. Their
 * recipients are told 554 now, so they are not filed (no dead entry for a refusal the sender
 * heard). Null when no route was refused, or when the message is dead for another reason (it
 * outlived `retry.maxAgeMs`); the caller has already answered a message refused on every route.
 */
export function splitRefused(result: AttemptResult): SplitResult | null {
  const refused = result.entry.routes.filter(r => r.status === 'failed');
  const routes = result.entry.routes.filter(r => r.status !== 'failed');
  if (refused.length === 0 || routes.length === 0) return null;
  const pending = routes.some(r => r.status === 'pending');
  if (pending && result.outcome === 'dead') return null;
  const { dead: refusal, ...entry } = result.entry;
  // the other routes all came to an end, some held by their policy: the message is held
  const held = pending
    ? null
    : heldInfo(routes, refusal?.at ?? new Date().toISOString());
  return {
    refused,
    kept: {
      ...result,
      entry: {
        ...entry,
        routes,
        lastError:
          routes
            .map(r => r.lastError)
            .filter(Boolean)
            .at(-1) ?? null,
        ...(held ? { held } : {}),
      },
      outcome: pending ? 'retry' : held ? 'held' : 'delivered',
    },
  };
}

/**
 * What became of a route the API did not refuse, for its recipients' 250: posted, dropped or
 * held by its policy (nothing posted: never told "delivered"), or waiting for a retry.
 */
function routeWord(route: RouteState): string {
  if (route.status === 'held') return 'held';
  if (route.status !== 'delivered') return 'queued';
  return route.dropped === undefined ? 'delivered' : 'dropped';
}

/** One reply per envelope recipient, for LMTP: its route's refusal, or 250 delivered or queued. */
function perRecipientReplies(
  entry: QueueEntry,
  { kept, refused }: SplitResult,
  result: AttemptResult,
): Accepted {
  const byRecipient = new Map<string, string | SmtpReplyError>();
  // the attempt's own errors, typed; a refusal kept from an earlier attempt is rebuilt
  const failures = refused.map(
    route =>
      result.failures?.get(route.index) ??
      new PermanentError(route.lastError ?? 'refused by the API', {
        api: route.api,
      }),
  );
  refused.forEach((route, i) => {
    const reply = toSmtpReply(failures[i]);
    for (const recipient of route.recipients) byRecipient.set(recipient, reply);
  });
  let delivered = 0;
  for (const route of kept.entry.routes) {
    const done = route.status === 'delivered' && route.dropped === undefined;
    if (done) delivered++;
    const text = `OK: ${routeWord(route)} as ${entry.id}`;
    for (const recipient of route.recipients) byRecipient.set(recipient, text);
  }
  return {
    reply: `OK: queued as ${entry.id}`,
    outcome: 'partial',
    messageId: result.messageId ?? entry.messageId,
    perRecipient: {
      replies: entry.envelope.rcptTo.map(
        recipient =>
          // every recipient has a route (checked at RCPT); were one missing, it would retry
          byRecipient.get(recipient) ??
          toSmtpReply(new TemporaryError('route not found')),
      ),
      failures,
      delivered,
    },
  };
}
