// The SMTP listener: smtp-server's options, and one handler per stage wired from the on-*.ts files.
import { unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import {
  SMTPServer,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import type { Config } from '../config/schema.js';
import type { Envelope } from '../envelope.js';
import {
  BridgeError,
  isTemporary,
  PermanentError,
  TemporaryError,
} from '../errors/bridge-error.js';
import { toSmtpReply } from '../errors/to-smtp-reply.js';
import { newQueueId } from '../mail/queue-id.js';
import { errorFields } from '../observability/logger.js';
import {
  isClientError,
  smtpLoggerAdapter,
} from '../observability/smtp-logger-adapter.js';
import { spoolHeader } from '../spool/spool-file.js';
import { acceptSync, acceptToSpool, newSpoolEntry } from './accept-message.js';
import { ClientLimiter, type ClientLimits } from './client-access.js';
import { authHandlers } from './on-auth.js';
import { connectHandlers } from './on-connect.js';
import { mailFromHandler } from './on-mail-from.js';
import { rcptToHandler } from './on-rcpt-to.js';
import { RcptCommands } from './rcpt-commands.js';
import { receiveToFile } from './receive-to-file.js';
import { loadServerTls } from './server-tls.js';
import { AUTH_METHODS } from './smtp-auth.js';
import type { SmtpDeps } from './smtp-deps.js';

export type { SmtpDeps } from './smtp-deps.js';

/** The per-client limits of the configuration. */
export function clientLimits(config: Config): ClientLimits {
  return {
    maxConnections: config.smtp.maxConnectionsPerClient,
    perMinute: config.smtp.connectionRatePerClient,
  };
}

/** Builds the SMTP server; the caller listens and closes it. */
export function createSmtpServer(deps: SmtpDeps): SMTPServer {
  const { config, log } = deps;
  const limiter =
    deps.limiter ?? new ClientLimiter(clientLimits(config), deps.now);
  const tls = loadServerTls(config.smtp.tls);
  const auth = config.smtp.auth;
  // LMTP: one reply per accepted RCPT command, so those commands are remembered
  const rcpts = config.smtp.lmtp ? new RcptCommands() : undefined;
  const connect = connectHandlers(deps, limiter);
  const logins = authHandlers(deps, limiter);
  const server = new SMTPServer({
    name: config.smtp.hostname ?? hostname(),
    banner: 'mailbridge',
    size: config.smtp.maxMessageSize,
    // smtp-server then answers 552 5.3.4 itself once DATA went over the limit. Not with LMTP:
    // it would answer once per envelope entry, not once per accepted RCPT; our own 552 (5.2.2
    // there, smtp-server's code for 552) goes through the LMTP replies instead
    rejectOversized: !config.smtp.lmtp,
    maxRecipients: config.smtp.maxRecipients,
    maxClients: config.smtp.maxClients,
    socketTimeout: config.smtp.socketTimeoutMs,
    closeTimeout: config.smtp.closeTimeoutMs,
    // STARTTLS only with a certificate of the operator's: without one smtp-server would offer
    // it with its built-in test key, whose private half is public. AUTH only with accounts.
    ...(tls ?? {}),
    disabledCommands: [
      ...(tls && !tls.secure ? [] : ['STARTTLS']),
      ...(auth.users.length > 0 ? [] : ['AUTH']),
    ],
    authMethods: AUTH_METHODS,
    // refused before STARTTLS (538 5.7.0) unless allowInsecure; smtp-server still lists it
    allowInsecureAuth: auth.allowInsecure,
    // smtp.auth.required is checked at MAIL FROM, for the reply text of our choice
    authOptional: true,
    onAuth: logins.onAuth,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    useProxy: config.smtp.proxyProtocol,
    // LMTP: smtp-server answers LHLO, and repeats each message's reply once per recipient
    lmtp: config.smtp.lmtp,
    logger: smtpLoggerAdapter(log) as never,
    onConnect: connect.onConnect,
    onClose: (session, callback) => {
      logins.forget(session);
      connect.onClose(session, callback);
    },
    onMailFrom: mailFromHandler(deps, rcpts),
    onRcptTo: rcptToHandler(deps, rcpts),
    onData: (stream, session, callback) => {
      handleData(stream, session, deps).then(
        message =>
          callback(null, rcpts ? rcpts.replies(message, session) : message),
        (err: unknown) =>
          rcpts
            ? callback(null, rcpts.replies(toSmtpReply(err), session))
            : callback(toSmtpReply(err)),
      );
    },
  });
  server.on('error', err => {
    // a client gone, or a TLS handshake that failed or never came: the client's doing
    if (!isClientError(err)) {
      return log.error('smtp server error', errorFields(err));
    }
    deps.metrics.clientErrors.inc();
    log.debug('smtp client error', errorFields(err));
  });
  return server;
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

/** Receives one message to disk, then hands it to the delivery mode; logs one outcome line. */
async function handleData(
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  deps: SmtpDeps,
): Promise<string | Array<string | Error>> {
  const envelope = copyEnvelope(session, newQueueId());
  // the accept latency runs from the end of DATA (the client's final dot) to the reply
  let dataEnded: bigint | undefined;
  stream.once('end', () => (dataEnded = process.hrtime.bigint()));
  const log = deps.log.child({ sessionId: session.id, queueId: envelope.id });
  const path = deps.spool.tmpMessagePath(envelope.id);
  const mode = deps.config.delivery.mode;
  let renamed = false;
  /** the file the message went to, if any (a small one is journaled by the spool instead) */
  let file: string | undefined = path;
  const outcome: Record<string, unknown> = {
    from: envelope.mailFrom,
    recipients: envelope.rcptTo.length,
    remoteAddress: envelope.remoteAddress,
  };
  try {
    // queue and hybrid: the state at accept time is the file's first line
    const entry =
      mode === 'sync' ? undefined : newSpoolEntry(envelope, deps, deps.now());
    const received = await receiveToFile(stream, path, {
      durable: mode !== 'sync',
      header: entry && spoolHeader(entry),
      keepSmall: mode !== 'sync',
    }).catch((err: unknown) => {
      // a client gone mid-message is no fault of ours; anything else is the disk's
      if (
        stream.destroyed &&
        (err as { code?: unknown }).code === 'ECONNECTION'
      ) {
        throw err;
      }
      throw new TemporaryError('Could not store the message, try again later', {
        cause: err,
      });
    });
    file = received.stored ? received.path : undefined;
    outcome.size = received.size;
    outcome.messageId = received.messageId;
    if (received.oversized) {
      throw new PermanentError('Message exceeds fixed maximum message size', {
        responseCode: 552,
      });
    }
    deps.metrics.messageBytes.observe(received.size);
    const accepted = entry
      ? await acceptToSpool(received, entry, deps)
      : await acceptSync(received, envelope, deps);
    renamed = mode !== 'sync';
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
      const text =
        delivered > 0 ? 'partly delivered' : 'answered per recipient';
      log.warn(`message ${text}`, {
        ...outcome,
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
    log.info(`message ${accepted.outcome}`, {
      ...outcome,
      messageId: accepted.messageId,
      outcome: accepted.outcome,
      mode,
      code: 250,
    });
    return accepted.reply;
  } catch (err) {
    if (
      stream.destroyed &&
      (err as { code?: unknown }).code === 'ECONNECTION'
    ) {
      // the client went away mid-message: nothing was accepted, nothing is wrong here
      deps.metrics.messages.inc({ outcome: 'aborted' });
      log.info('message aborted: client disconnected during DATA', {
        ...outcome,
        outcome: 'aborted',
      });
      throw err;
    }
    const reply = toSmtpReply(err);
    const temporary = isTemporary(err);
    deps.metrics.messages.inc({ outcome: temporary ? 'deferred' : 'rejected' });
    const fields = {
      ...outcome,
      outcome: temporary ? 'deferred' : 'rejected',
      mode,
      code: reply.responseCode,
    };
    if (!(err instanceof BridgeError)) {
      log.error('message failed: internal error', {
        ...fields,
        ...errorFields(err),
      });
    } else {
      log.log(
        temporary ? 'warn' : 'info',
        `message ${fields.outcome}: ${err.message}`,
        { ...fields, ...(err.cause ? errorFields(err.cause) : {}) },
      );
    }
    throw err;
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
