// From a received message to its Accepted outcome, per delivery mode (sync | queue | hybrid):
// the one Intake the daemon builds for the listener. Protocol-neutral.
import type { SenderAuthenticator } from '../auth/sender-auth.js';
import type { Config } from '../config/schema.js';
import type { Envelope } from '../mail/envelope.js';
import {
  isTemporary,
  PermanentError,
  TemporaryError,
} from '../errors/bridge-error.js';
import { toSmtpReply } from '../errors/to-smtp-reply.js';
import { extractIds } from '../mail/message-id.js';
import { attemptRoutes } from '../pipeline/attempt-routes.js';
import { decisiveFailure, type RouteResult } from '../pipeline/decide.js';
import type { QueueRunner } from '../queue/queue-runner.js';
import { groupByRoute } from '../routing/resolve-route.js';
import type { DedupeRecords } from '../dedupe/dedupe-records.js';
import {
  newQueueEntry,
  withReceived,
  type QueueEntry,
} from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';
import { holdInSpool } from './hold-sync.js';
import { attemptWhileWaiting, type HybridDeps } from './hybrid.js';
import type { Accepted, Intake, Received } from './intake.js';

export interface IntakeDeps extends HybridDeps {
  spool: Spool;
  /** the delivery workers; absent in sync mode */
  runner?: QueueRunner;
  /**
   * Sync mode: the routes already delivered (the queue workers' store). A message resent after
   * a 451 is then not posted again to the routes that took it the first time.
   */
  dedupe?: DedupeRecords;
  /** judges senders for the routes that ask (sync mode: before posting) */
  senderAuth?: SenderAuthenticator;
  /** the clock of queue entries (received, first due) */
  now: () => number;
}

/** The Intake of the configured delivery mode. */
export function createIntake(deps: IntakeDeps): Intake {
  const sync = deps.config.delivery.mode === 'sync';
  return {
    tmpPath: id => deps.spool.tmpMessagePath(id),
    newEntry: envelope =>
      sync ? undefined : newSpoolEntry(envelope, deps, deps.now()),
    accept: (received, envelope, initial) =>
      initial
        ? acceptToSpool(received, initial, deps)
        : acceptSync(received, envelope, deps),
    waitForRoom: maxMs => deps.runner?.waitForRoom(maxMs),
    get waiting() {
      return deps.runner?.waitingFirstAttempt ?? 0;
    },
  };
}

/**
 * Sync mode: parse, map and post now. A failure is thrown for the SMTP edge to answer, for the
 * whole message; but with LMTP, when some routes took it and some did not, each recipient is
 * answered for its own route (the client then retries only the recipients that failed).
 */
export async function acceptSync(
  received: Received,
  envelope: Envelope,
  deps: IntakeDeps,
): Promise<Accepted> {
  const groups = groupByRoute(envelope.rcptTo, deps.config.routes);
  if (groups.length === 0) {
    throw new PermanentError('No recipient of this message has a route', {
      responseCode: 550,
    });
  }
  const acceptedId = extractIds(received.messageId ?? undefined)[0] ?? null;
  const attempted = await attemptRoutes(
    {
      source: received.raw ?? received.path,
      // attachments go next to the received file, in the spool's tmp/, for this attempt only
      parse: { attachmentDir: deps.spool.tmpDir },
      envelope,
      groups,
      keys: {
        messageId: acceptedId,
        fingerprint: received.fingerprint,
      },
      size: received.size,
      auth: received.auth,
    },
    {
      mapping: deps.config.mapping,
      sink: deps.sink,
      dedupe: deps.dedupe,
      senderAuth: deps.senderAuth,
    },
  );
  if (attempted.kind === 'unparsed') throw attempted.error;
  const outcomes = attempted.routes;
  const auth = attempted.auth;
  const reply = `OK: delivered as ${envelope.id}`;
  const messageId = attempted.messageId ?? acceptedId;
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
  // a route's policy held it, or a route was posted without what the API could not take: the
  // message is stored (held/) before anyone hears 250 for its recipients
  const held = outcomes.filter(o => o.outcome === 'held');
  const kept = outcomes.filter(
    o => o.outcome === 'held' || (o.outcome === 'delivered' && o.trimmed),
  );
  const keptId =
    kept.length > 0
      ? await holdInSpool(
          received,
          envelope,
          groups,
          kept,
          { auth: attempted.auth, messageId: acceptedId },
          deps,
        )
      : undefined;
  const heldReply = held.length ? `OK: held as ${keptId}` : undefined;
  const dropped = droppedOf(outcomes);
  const note = dropped ? { dropped } : {};
  if (failures.length === 0) {
    // nothing posted: every route held or dropped, some held
    const done = held.length + (dropped?.routes ?? 0);
    if (heldReply && done === outcomes.length) {
      return { reply: heldReply, outcome: 'held', messageId, auth, ...note };
    }
    if (dropped?.routes === outcomes.length) {
      const text = `OK: dropped as ${envelope.id}`;
      return { reply: text, outcome: 'dropped', messageId, auth, dropped };
    }
    return {
      reply,
      outcome: deps.sink.kind === 'dry-run' ? 'dry-run' : 'delivered',
      messageId,
      auth,
      ...note,
    };
  }
  const byRecipient = new Map<string, unknown>();
  const heldRecipients = new Set<string>();
  const droppedRecipients = new Set<string>();
  for (const result of outcomes) {
    const group = groups.find(g => g.index === result.index);
    const failure = result.outcome === 'failed' ? result.failure : undefined;
    for (const recipient of group?.recipients ?? []) {
      byRecipient.set(recipient, failure);
      if (result.outcome === 'held') heldRecipients.add(recipient);
      if (result.outcome === 'dropped') droppedRecipients.add(recipient);
    }
  }
  const replies = envelope.rcptTo.map(recipient => {
    const failure = byRecipient.get(recipient);
    if (failure !== undefined) return toSmtpReply(failure);
    if (heldRecipients.has(recipient)) return heldReply!;
    return droppedRecipients.has(recipient)
      ? `OK: dropped as ${envelope.id}`
      : reply;
  });
  return {
    reply,
    outcome: 'partial',
    messageId,
    auth,
    ...note,
    perRecipient: {
      replies,
      failures,
      delivered:
        outcomes.length -
        failures.length -
        held.length -
        (dropped?.routes ?? 0),
    },
  };
}

/** The routes a policy dropped, counted and named for the outcome line; undefined for none. */
function droppedOf(outcomes: RouteResult[]): Accepted['dropped'] {
  const reasons = outcomes.flatMap(o =>
    o.outcome === 'dropped' ? [`route ${o.index}: ${o.reason}`] : [],
  );
  return reasons.length
    ? { routes: reasons.length, reason: reasons.join('; ') }
    : undefined;
}

/**
 * The state a message is spooled with, before its bytes arrive: its header line goes in front
 * of them (see spool-file.ts). Size and Message-ID are filled in once it is received.
 */
export function newSpoolEntry(
  envelope: Envelope,
  deps: { config: Pick<Config, 'routes'> },
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
  received: Received,
  initial: QueueEntry,
  deps: IntakeDeps,
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
  // the runner holds it while the sender waits; the attempt's end is filed from here
  const held = runner.attemptNow(entry, received.raw);
  return attemptWhileWaiting(held, entry, deps, queued);
}
