// What happens to a received message in each delivery mode, up to the text of the 250 reply.
import type { Config } from '../config/schema.js';
import { decisiveFailure, deliverRoutes } from '../deliver/deliver-message.js';
import type { PayloadSink } from '../deliver/payload-sink.js';
import type { AttemptResult } from '../deliver/attempt-delivery.js';
import type { QueueRunner } from '../deliver/queue-runner.js';
import type { Envelope } from '../envelope.js';
import {
  isTemporary,
  PermanentError,
  TemporaryError,
} from '../errors/bridge-error.js';
import { toSmtpReply, type SmtpReplyError } from '../errors/to-smtp-reply.js';
import { messageIds } from '../map/to-api-payload.js';
import type { Logger } from '../observability/logger.js';
import { errorFields } from '../observability/logger.js';
import { parseMessage } from '../parse/parse-message.js';
import { groupByRoute } from '../routing/resolve-route.js';
import type { DedupeStore } from '../spool/dedupe-store.js';
import {
  newQueueEntry,
  withReceived,
  type QueueEntry,
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
   * LMTP in sync mode, when some routes took the message and some did not: one reply per
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
  // attachments go next to the received file, in the spool's tmp/, for this attempt only
  const message = await parseMessage(received.raw ?? received.path, {
    attachmentDir: deps.spool.tmpDir,
  });
  let outcomes;
  try {
    ({ outcomes } = await deliverRoutes(
      message,
      envelope,
      deps.config,
      deps.sink,
      deps.dedupe,
    ));
  } finally {
    await message.dispose();
  }
  const reply = `OK: delivered as ${envelope.id}`;
  const messageId = messageIds(message).messageId;
  const failures = outcomes.filter(o => 'failure' in o).map(o => o.failure);
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
  for (const { group, failure } of outcomes) {
    for (const recipient of group.recipients) {
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
  const entry = withReceived(initial, received);
  try {
    await deps.spool.commitFresh(entry.id, received.path);
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

/** Hybrid: one attempt while the sender waits; a refusal goes back to the sender as 554. */
async function tryNow(
  entry: QueueEntry,
  raw: Buffer | undefined,
  runner: QueueRunner,
  deps: AcceptDeps,
  queued: Accepted,
): Promise<Accepted> {
  const attempt = runner.attemptClaimed(entry, raw);
  // the message is stored: when its attempt cannot be filed, the queue takes it from here
  const failed = async (err: unknown): Promise<Accepted> => {
    deps.log.error('hybrid attempt failed', {
      queueId: entry.id,
      ...errorFields(err),
    });
    await runner.release(entry.id);
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
    attempt.then(late => runner.file(late)).catch(failed);
    return queued;
  }
  const nothingDelivered = result.entry.routes.every(
    r => r.status !== 'delivered',
  );
  if (result.outcome === 'dead' && nothingDelivered) {
    await runner.discardFresh(entry.id);
    throw new PermanentError(result.entry.lastError ?? 'refused by the API');
  }
  try {
    await runner.file(result);
  } catch (err) {
    return failed(err);
  }
  if (result.outcome !== 'delivered') return queued;
  return {
    reply: `OK: delivered as ${entry.id}`,
    outcome: deps.sink.kind === 'dry-run' ? 'dry-run' : 'delivered',
    messageId: result.messageId ?? entry.messageId,
  };
}
