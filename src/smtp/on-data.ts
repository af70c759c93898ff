// DATA: receive the message, hand it to the delivery mode, then THE one catch of DATA: it alone
// decides the metrics, the one outcome line of the log and the reply (from toSmtpReply).
import { unlink } from 'node:fs/promises';
import type {
  SMTPServerDataStream,
  SMTPServerOptions,
  SMTPServerSession,
} from 'smtp-server';
import { describe } from '../auth/verdict.js';
import type { Envelope } from '../mail/envelope.js';
import {
  BridgeError,
  isTemporary,
  MalformedMessageError,
  PermanentError,
  TemporaryError,
} from '../errors/bridge-error.js';
import { toSmtpReply, type SmtpReplyError } from '../errors/to-smtp-reply.js';
import type { Accepted } from '../intake/intake.js';
import { newQueueId } from '../mail/queue-id.js';
import { errorFields, type Logger } from '../observability/logger.js';
import { DRY_RUN_OUTCOME } from '../pipeline/payload-sink.js';
import type { QueueEntry } from '../spool/queue-entry.js';
import { spoolHeader } from '../spool/spool-file.js';
import type { Reply } from './lmtp-replies.js';
import type { RcptCommands } from './rcpt-commands.js';
import { receiveToFile, type ReceivedFile } from './receive-to-file.js';
import { refusalFields } from './refusal-log.js';
import { DataDeadlineError } from './session-deadlines.js';
import { judgeAtData } from './judge-sender.js';
import type { SmtpDeps } from './smtp-deps.js';

/** The answer to a message: the 250 text, one reply per recipient, or the refusal. */
type DataReply = string | Reply[] | SmtpReplyError;

/** What the outcome line tells of one message, and where it goes. */
interface Outcome {
  deps: SmtpDeps;
  log: Logger;
  mode: SmtpDeps['config']['delivery']['mode'];
  /** from, recipients and client; size and Message-ID once received */
  fields: Record<string, unknown>;
  /** the session, for a refusal's fields (refusal-log.ts) */
  session: SMTPServerSession;
  /** why the message would be refused at this point: the refusal line's reason */
  refusal: string;
}

/** onData; with LMTP, the reply is repeated once per accepted RCPT command. */
export function dataHandler(
  deps: SmtpDeps,
  rcpts: RcptCommands | undefined,
): NonNullable<SMTPServerOptions['onData']> {
  return (stream, session, callback) => {
    void handleData(stream, session, deps).then(reply => {
      if (rcpts) return callback(null, rcpts.replies(reply, session));
      if (reply instanceof Error) return callback(reply);
      callback(null, reply);
    });
  };
}

/**
 * A client gone mid-message: smtp-server's ECONNECTION on a stream it destroyed. Nothing was
 * accepted, and it is no fault of ours.
 */
function isClientGone(err: unknown, stream: SMTPServerDataStream): boolean {
  return stream.destroyed && (err as { code?: unknown }).code === 'ECONNECTION';
}

/** Receives one message to disk, then hands it to the delivery mode; logs one outcome line. */
async function handleData(
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  deps: SmtpDeps,
): Promise<DataReply> {
  const envelope = copyEnvelope(session, newQueueId());
  // the accept latency runs from the end of DATA (the client's final dot) to the reply
  let dataEnded: bigint | undefined;
  stream.once('end', () => (dataEnded = process.hrtime.bigint()));
  const log = deps.log.child({ sessionId: session.id, queueId: envelope.id });
  const path = deps.intake.tmpPath(envelope.id);
  const mode = deps.config.delivery.mode;
  let renamed = false;
  /** the file the message went to, if any (a small one is journaled by the spool instead) */
  let file: string | undefined = path;
  const outcome: Outcome = {
    deps,
    log,
    mode,
    session,
    refusal: 'storage',
    fields: {
      from: envelope.mailFrom,
      recipients: envelope.rcptTo.length,
      // the recipients themselves, as Postfix's to= (a stranger's own addresses: no secret)
      to: envelope.rcptTo,
      remoteAddress: envelope.remoteAddress,
    },
  };
  try {
    // queue and hybrid: the state at accept time is the file's first line
    const entry = deps.intake.newEntry(envelope);
    const received = await receive(stream, path, entry, mode);
    file = received.stored ? received.path : undefined;
    outcome.fields.size = received.size;
    outcome.fields.messageId = received.messageId;
    if (received.oversized) {
      outcome.refusal = 'size';
      throw new PermanentError('Message exceeds fixed maximum message size', {
        responseCode: 552,
      });
    }
    if (received.malformed) {
      // the parser would refuse it at delivery: the sender hears it now, not a 250 then silence
      outcome.refusal = 'structure';
      throw new MalformedMessageError(
        `Message structure refused: ${received.malformed.text}`,
      );
    }
    // a route that enforces sender authentication hears the verdict before the 250
    outcome.refusal = 'sender_auth';
    const auth = await judgeAtData(deps, envelope, received);
    if (auth) {
      outcome.fields.senderAuth = auth.verdict;
      outcome.fields.authResults = describe(auth);
    }
    deps.metrics.messageBytes.observe(received.size);
    // sync and hybrid modes: the API's answer refuses; queue mode: only the spool can fail
    outcome.refusal = mode === 'queue' ? 'storage' : 'delivery';
    const accepted = await deps.intake.accept(
      { ...received, auth },
      envelope,
      entry,
    );
    // sync mode judged it while posting: the one outcome line says so
    if (accepted.auth && !auth) {
      outcome.fields.senderAuth = accepted.auth.verdict;
      outcome.fields.authResults = describe(accepted.auth);
    }
    renamed = mode !== 'sync';
    return answerAccepted(accepted, outcome);
  } catch (err) {
    return answerFailed(err, isClientGone(err, stream), outcome);
  } finally {
    // a message cut off mid-DATA has no end of DATA: nothing to measure
    if (dataEnded !== undefined) {
      deps.metrics.acceptSeconds.observe(
        Number(process.hrtime.bigint() - dataEnded) / 1e9,
      );
    }
    // a file the spool took was renamed away; any other (sync, oversize, failure) goes now
    if (!renamed && file) await unlink(file).catch(() => undefined);
  }
}

/**
 * The message, to `path` (or kept in memory when small, outside sync mode). Not a decision: a
 * failure other than the client's is the disk's, and is said so (TemporaryError) for the catch.
 */
function receive(
  stream: SMTPServerDataStream,
  path: string,
  entry: QueueEntry | undefined,
  mode: Outcome['mode'],
): Promise<ReceivedFile> {
  return receiveToFile(stream, path, {
    durable: mode !== 'sync',
    header: entry && spoolHeader(entry),
    keepSmall: mode !== 'sync',
  }).catch((err: unknown) => {
    if (isClientGone(err, stream)) throw err;
    throw new TemporaryError('Could not store the message, try again later', {
      cause: err,
    });
  });
}

/** Counts and logs a message the delivery mode took (whole, or per recipient); its reply. */
function answerAccepted(
  accepted: Accepted,
  { deps, log, mode, fields }: Outcome,
): DataReply {
  // sync mode: routes a policy dropped (the filer counts them in the other modes)
  const { dropped } = accepted;
  if (dropped) deps.metrics.dropped.inc(dropped.routes);
  if (dropped) {
    fields[accepted.outcome === 'dropped' ? 'reason' : 'dropped'] =
      dropped.reason;
  }
  if (accepted.perRecipient) {
    // LMTP, sync or hybrid mode: routes fared differently; each recipient hears its own
    const { replies, failures, delivered } = accepted.perRecipient;
    deps.metrics.messages.inc({ outcome: 'partial' });
    for (const reply of replies) {
      if (typeof reply === 'string') continue;
      deps.metrics.refusedRecipients.inc({
        result: reply.responseCode >= 500 ? 'permanent' : 'temporary',
      });
    }
    // some routes took it; or none did, some failing for now and some for good
    const text = delivered > 0 ? 'partly delivered' : 'answered per recipient';
    log.warn(`message ${text}`, {
      ...fields,
      messageId: accepted.messageId,
      outcome: 'partial',
      mode,
      code: 250,
      refusedRecipients: replies.filter(r => typeof r !== 'string').length,
      error: (failures[0] as Error | undefined)?.message,
    });
    return replies;
  }
  deps.metrics.messages.inc({ outcome: 'accepted' });
  const line = {
    ...fields,
    messageId: accepted.messageId,
    outcome: accepted.outcome,
    mode,
    code: 250,
  };
  if (accepted.outcome === 'dry-run') {
    // sync: this is the message's one outcome line; hybrid: the filer's has warned already
    if (mode === 'sync') log.warn(DRY_RUN_OUTCOME, line);
    else log.info(DRY_RUN_OUTCOME, line);
  } else log.info(`message ${accepted.outcome}`, line);
  return accepted.reply;
}

/**
 * The decision on any failure of DATA: aborted (the client left), deferred or rejected (a
 * BridgeError), or a bug (`error` with the stack, and a generic 451). The reply is toSmtpReply's.
 */
function answerFailed(
  err: unknown,
  clientGone: boolean,
  { deps, log, mode, fields, session, refusal }: Outcome,
): SmtpReplyError {
  const reply = toSmtpReply(err);
  if (clientGone) {
    // the client went away mid-message, or was too slow (its 421 is sent): nothing was
    // accepted, nothing is wrong here
    const why =
      err instanceof DataDeadlineError
        ? 'DATA not received in time'
        : 'client disconnected during DATA';
    deps.metrics.messages.inc({ outcome: 'aborted' });
    log.info(`message aborted: ${why}`, {
      ...fields,
      outcome: 'aborted',
    });
    return reply;
  }
  const temporary = isTemporary(err);
  const outcome = temporary ? 'deferred' : 'rejected';
  deps.metrics.messages.inc({ outcome });
  // the refusal's one line: the outcome line, with the fields every refusal line has
  const line = {
    ...fields,
    ...refusalFields(session, {
      command: 'DATA',
      reason: err instanceof BridgeError ? refusal : 'internal',
      address: fields.from as string | null,
      code: reply.responseCode,
    }),
    outcome,
    mode,
  };
  if (!(err instanceof BridgeError)) {
    log.error('message failed: internal error', {
      ...line,
      ...errorFields(err),
    });
  } else {
    log.log(temporary ? 'warn' : 'info', `message ${outcome}: ${err.message}`, {
      ...line,
      ...(err.cause ? errorFields(err.cause) : {}),
    });
  }
  return reply;
}

function copyEnvelope(session: SMTPServerSession, id: string): Envelope {
  const mailFrom = session.envelope.mailFrom;
  return {
    id,
    mailFrom: mailFrom && mailFrom.address ? mailFrom.address : null,
    rcptTo: session.envelope.rcptTo.map(r => r.address),
    remoteAddress: session.remoteAddress,
    clientHostname: session.clientHostname,
    helo: session.hostNameAppearsAs,
    secure: session.secure,
    receivedAt: new Date().toISOString(),
  };
}
