// What happens to a received message in each delivery mode, up to the text of the 250 reply.
import type { Config } from '../config/schema.js';
import type { PayloadSink } from '../api/payload-sink.js';
import { attemptRoutes } from '../pipeline/attempt-routes.js';
import { decisiveFailure, type AttemptResult } from '../pipeline/decide.js';
import type { QueueRunner } from '../deliver/queue-runner.js';
import type { Envelope } from '../envelope.js';
import {
  isTemporary,
  PermanentError,
  TemporaryError,
} from '../errors/bridge-error.js';
import { toSmtpReply, type SmtpReplyError } from '../errors/to-smtp-reply.js';
import { extractIds } from '../map/message-id.js';
import type { Logger } from '../observability/logger.js';
import { errorFields } from '../observability/logger.js';
import { groupByRoute } from '../routing/resolve-route.js';
import type { DedupeStore } from '../spool/dedupe-store.js';
import {
  newQueueEntry,
  withReceived,
  type QueueEntry,
  type RouteState,
} from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';
import type { ReceivedFile } from './receive-to-file.js';

export interface AcceptDeps {
  config: Config;
  sink: PayloadSink;
  spool: Spool;
  /** the delivery workers; absent in sync mode */
  runner?: QueueRunner;
  /**
   * Sync mode: the routes already delivered (the queue workers' store). A message resent after
   * a 451 is then not posted again to the routes that took it the first time.
   */
  dedupe?: DedupeStore;
  log: Logger;
}

/** The 250 text and what the outcome line of the log says. */
export interface Accepted {
  reply: string;
  outcome: 'delivered' | 'dry-run' | 'queued' | 'partial';
  messageId: string | null;
  /**
   * LMTP (sync or hybrid mode), when the routes fared differently: one reply per
   * recipient, in RCPT order (the reply text, or the refusal), and the failures.
   */
  perRecipient?: {
    replies: Array<string | SmtpReplyError>;
    failures: unknown[];
    /** routes that took the message (or had it already) */
    delivered: number;
  };
}

/**
 * Sync mode: parse, map and post now. A failure is thrown for the SMTP edge to answer, for the
 * whole message; but with LMTP, when some routes took it and some did not, each recipient is
 * answered for its own route (the client then retries only the recipients that failed).
 */
export async function acceptSync(
  received: ReceivedFile,
  envelope: Envelope,
  deps: AcceptDeps,
): Promise<Accepted> {
  const groups = groupByRoute(envelope.rcptTo, deps.config.routes);
  if (groups.length === 0) {
    throw new PermanentError('No recipient of this message has a route', {
      responseCode: 550,
    });
  }
  const attempted = await attemptRoutes(
    {
      source: received.raw ?? received.path,
      // attachments go next to the received file, in the spool's tmp/, for this attempt only
      parse: { attachmentDir: deps.spool.tmpDir },
      envelope,
      groups,
      keys: {
        messageId: extractIds(received.messageId ?? undefined)[0] ?? null,
        fingerprint: received.fingerprint,
      },
    },
    { mapping: deps.config.mapping, sink: deps.sink, dedupe: deps.dedupe },
  );
  if (attempted.kind === 'unparsed') throw attempted.error;
  const outcomes = attempted.routes;
  const reply = `OK: delivered as ${envelope.id}`;
  const messageId =
    attempted.messageId ??
    extractIds(received.messageId ?? undefined)[0] ??
    null;
  const failures = outcomes.flatMap(o =>
    o.outcome === 'failed' ? [o.failure] : [],
  );
  // one reply for all: SMTP, or LMTP when every route failed alike (all for now, or all for good)
  const temporary = failures.map(isTemporary);
  const alike = temporary.every(t => t) || temporary.every(t => !t);
  if (
    failures.length > 0 &&
    (!deps.config.smtp.lmtp || (failures.length === outcomes.length && alike))
  ) {
    throw decisiveFailure(failures);
  }
  if (failures.length === 0) {
    return {
      reply,
      outcome: deps.sink.kind === 'dry-run' ? 'dry-run' : 'delivered',
      messageId,
    };
  }
  const byRecipient = new Map<string, unknown>();
  for (const result of outcomes) {
    const group = groups.find(g => g.index === result.index);
    const failure = result.outcome === 'failed' ? result.failure : undefined;
    for (const recipient of group?.recipients ?? []) {
      byRecipient.set(recipient, failure);
    }
  }
  const replies = envelope.rcptTo.map(recipient => {
    const failure = byRecipient.get(recipient);
    return failure === undefined ? reply : toSmtpReply(failure);
  });
  return {
    reply,
    outcome: 'partial',
    messageId,
    perRecipient: {
      replies,
      failures,
      delivered: outcomes.length - failures.length,
    },
  };
}

/**
 * The state a message is spooled with, before its bytes arrive: its header line goes in front
 * of them (see spool-file.ts). Size and Message-ID are filled in once it is received.
 */
export function newSpoolEntry(
  envelope: Envelope,
  deps: Pick<AcceptDeps, 'config'>,
  now: number,
): QueueEntry {
  return newQueueEntry({
    envelope,
    groups: groupByRoute(envelope.rcptTo, deps.config.routes),
    messageId: null,
    size: 0,
    now,
  });
}

/**
 * Queue and hybrid modes: make the message durable first, as a fresh message claimed by this
 * process (one file: header line and raw bytes). Queue mode answers right away and hands it to
 * the workers; hybrid mode tries the API for up to `delivery.syncTimeoutMs`.
 */
export async function acceptToSpool(
  received: ReceivedFile,
  initial: QueueEntry,
  deps: AcceptDeps,
): Promise<Accepted> {
  const runner = deps.runner;
  if (!runner) throw new Error('queue runner missing');
  let entry = withReceived(initial, received);
  try {
    if (received.stored) {
      await deps.spool.commitFresh(entry.id, received.path);
    } else if (received.raw) {
      // a small message: a record of the journal, not a file of its own
      entry = await deps.spool.journalFresh(entry, received.raw);
    } else {
      throw new Error('received message neither stored nor kept');
    }
  } catch (err) {
    throw new TemporaryError('Could not store the message, try again later', {
      cause: err,
    });
  }
  const queued: Accepted = {
    reply: `OK: queued as ${entry.id}`,
    outcome: 'queued',
    messageId: received.messageId,
  };
  const hybrid = deps.config.delivery.mode === 'hybrid' && !runner.pausedReason;
  if (!hybrid) {
    runner.acceptFresh(entry, received.raw);
    return queued;
  }
  runner.holdFresh(entry);
  return tryNow(entry, received.raw, runner, deps, queued);
}

/**
 * Hybrid: one attempt while the sender waits; a refusal goes back to the sender as 554. With
 * LMTP each recipient is answered for its own route: those of a route the API refused for good
 * hear 554 at once, the others 250 (see splitRefused).
 */
async function tryNow(
  entry: QueueEntry,
  raw: Buffer | undefined,
  runner: QueueRunner,
  deps: AcceptDeps,
  queued: Accepted,
): Promise<Accepted> {
  const attempt = runner.attemptClaimed(entry, raw);
  // the message is stored: when its attempt cannot be filed, the queue takes it from here
  const release = async (err: unknown): Promise<void> => {
    deps.log.error('hybrid attempt failed', {
      queueId: entry.id,
      ...errorFields(err),
    });
    await runner.release(entry.id);
  };
  const failed = async (err: unknown): Promise<Accepted> => {
    await release(err);
    return queued;
  };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<null>(done => {
    timer = setTimeout(() => done(null), deps.config.delivery.syncTimeoutMs);
  });
  let result: AttemptResult | null;
  try {
    result = await Promise.race([attempt, timedOut]);
  } catch (err) {
    return failed(err);
  } finally {
    clearTimeout(timer);
  }
  if (!result) {
    // the attempt goes on; its result is filed like any worker's
    runner.fileLate(attempt, failed);
    return queued;
  }
  const nothingDelivered = result.entry.routes.every(
    r => r.status !== 'delivered',
  );
  if (result.outcome === 'dead' && nothingDelivered) {
    await runner.discardFresh(entry.id);
    throw new PermanentError(result.entry.lastError ?? 'refused by the API');
  }
  const split = deps.config.smtp.lmtp ? splitRefused(result) : null;
  try {
    await runner.file(split?.kept ?? result);
  } catch (err) {
    if (!split) return failed(err);
    // the refusals stand, and what the API took it has; the queue finishes the rest. Should
    // the state without the refused routes not have reached the disk, they are tried again:
    // refused again, they end in dead/; taken this time, their recipients, told 554, get the
    // message after all. Never lost, which a 250 for a route then dropped could be.
    await release(err);
  }
  if (split) return perRecipientReplies(entry, split, result);
  if (result.outcome !== 'delivered') return queued;
  return {
    reply: `OK: delivered as ${entry.id}`,
    outcome: deps.sink.kind === 'dry-run' ? 'dry-run' : 'delivered',
    messageId: result.messageId ?? entry.messageId,
  };
}

/** A hybrid attempt's result with the routes the API refused for good taken out. */
export interface SplitResult {
  /** what is filed: the other routes, delivered or waiting for a retry; nothing for dead/ */
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
  const { dead: _refusal, ...entry } = result.entry;
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
      },
      outcome: pending ? 'retry' : 'delivered',
    },
  };
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
    const done = route.status === 'delivered';
    if (done) delivered++;
    const text = `OK: ${done ? 'delivered' : 'queued'} as ${entry.id}`;
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
