// The SMTP listener: smtp-server options and one handler per stage (RCPT, DATA).
import { unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import { allowedNetworks } from '../config/networks.js';
import type { Config } from '../config/schema.js';
import type { Envelope } from '../envelope.js';
import {
  BridgeError,
  isTemporary,
  PermanentError,
  TemporaryError,
} from '../errors/bridge-error.js';
import { smtpReply, toSmtpReply } from '../errors/to-smtp-reply.js';
import { newQueueId } from '../mail/queue-id.js';
import { errorFields } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  isClientError,
  smtpLoggerAdapter,
} from '../observability/smtp-logger-adapter.js';
import { resolveRoute } from '../routing/resolve-route.js';
import { spoolHeader } from '../spool/spool-file.js';
import {
  acceptSync,
  acceptToSpool,
  newSpoolEntry,
  type AcceptDeps,
} from './accept-message.js';
import {
  ClientLimiter,
  networkRefusal,
  type ClientCounter,
  type ClientLimits,
  type Refusal,
} from './client-access.js';
import { receiveToFile } from './receive-to-file.js';
import { lmtpReplies } from './lmtp-replies.js';
import { loadServerTls } from './server-tls.js';
import { AUTH_METHODS, checkCredentials } from './smtp-auth.js';

export interface SmtpDeps extends AcceptDeps {
  metrics: Metrics;
  /** the clock of queue entries (received, first due) */
  now: () => number;
  /**
   * Where sessions and failed logins are counted per client: by default in this process; in a
   * cluster worker, by the primary (a WorkerLimiter), so that the limits hold for the daemon
   */
  limiter?: ClientCounter;
}

/** Failed logins (SMTP AUTH) a session may make; the last one closes it. */
const LOGIN_FAILURES_PER_SESSION = 3;

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
  const allowed = allowedNetworks(config.smtp.allowedNetworks);
  const limiter =
    deps.limiter ?? new ClientLimiter(clientLimits(config), deps.now);
  const tls = loadServerTls(config.smtp.tls);
  const lmtp = config.smtp.lmtp;
  /**
   * LMTP: the recipients of each session's transaction as its RCPT commands gave them, once per
   * accepted command. smtp-server merges a recipient given twice into one envelope entry, but
   * the client awaits one reply per accepted RCPT (RFC 2033 4.2).
   */
  const rcptCommands = new WeakMap<SMTPServerSession, string[]>();
  /** One reply per accepted RCPT of the session's transaction (see lmtpReplies). */
  const repliesFor = (
    result: string | Error | Array<string | Error>,
    session: SMTPServerSession,
  ) => {
    const envelope = session.envelope.rcptTo.map(r => r.address);
    return lmtpReplies(result, rcptCommands.get(session) ?? envelope, envelope);
  };
  const auth = config.smtp.auth;
  /** failed logins of each session still open, by session id */
  const loginFailures = new Map<string, number>();
  /** the sessions the limiter counted, with their client address: given back when they close */
  const counted = new Map<string, string>();
  /** sessions whose count the limiter has not answered yet, by id: true once they closed */
  const asking = new Map<string, boolean>();
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
    onAuth: (login, session, callback) => {
      const username = login.username ?? '';
      if (checkCredentials(auth.users, username, login.password ?? '')) {
        deps.metrics.authentications.inc({ result: 'success' });
        log.debug('client authenticated', { sessionId: session.id, username });
        return callback(null, { user: username });
      }
      deps.metrics.authentications.inc({ result: 'failure' });
      const failures = (loginFailures.get(session.id) ?? 0) + 1;
      loginFailures.set(session.id, failures);
      const answer = (clientBlocked: boolean) => {
        // no guessing on and on: a few failures close the session (smtp-server closes after 421)
        const closing = failures >= LOGIN_FAILURES_PER_SESSION || clientBlocked;
        log.info('authentication failed', {
          sessionId: session.id,
          remoteAddress: session.remoteAddress,
          username,
          code: closing ? 421 : 535,
        });
        callback(
          closing
            ? smtpReply(421, 'Too many failed logins, closing connection')
            : smtpReply(535, 'Authentication credentials invalid'),
        );
      };
      const blocked = limiter.loginFailed(session.remoteAddress);
      if (typeof blocked === 'boolean') answer(blocked);
      else void blocked.then(answer);
    },
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    useProxy: config.smtp.proxyProtocol,
    // LMTP: smtp-server answers LHLO, and repeats each message's reply once per recipient
    lmtp: config.smtp.lmtp,
    logger: smtpLoggerAdapter(log) as never,
    // after the PROXY header, if any: remoteAddress is then the client's
    onConnect: (session, callback) => {
      const answer = (refusal: Refusal | undefined) => {
        if (!refusal) {
          counted.set(session.id, session.remoteAddress);
          return callback();
        }
        callback(refuseSession(refusal, session, deps));
      };
      if (!allowed(session.remoteAddress)) {
        return answer(networkRefusal(session.remoteAddress));
      }
      const refusal = limiter.open(session.remoteAddress);
      if (!(refusal instanceof Promise)) return answer(refusal);
      // a cluster's primary answers a moment later; the client may be gone by then
      asking.set(session.id, false);
      void refusal.then(late => {
        const gone = asking.get(session.id);
        asking.delete(session.id);
        if (!gone) return answer(late);
        // closed while it was asked: a session the primary counted is given back at once
        if (!late) limiter.close(session.remoteAddress);
      });
    },
    onClose: session => {
      loginFailures.delete(session.id);
      if (asking.has(session.id)) {
        asking.set(session.id, true);
        log.debug('session closed before its client count was answered', {
          sessionId: session.id,
          remoteAddress: session.remoteAddress,
        });
        return;
      }
      const address = counted.get(session.id);
      if (address === undefined) return;
      counted.delete(session.id);
      limiter.close(address);
      log.debug('session closed', {
        sessionId: session.id,
        remoteAddress: session.remoteAddress,
      });
    },
    onMailFrom: (_address, session, callback) => {
      // a new transaction: its RCPT commands are counted from here (LMTP's replies)
      if (lmtp) rcptCommands.set(session, []);
      if (config.smtp.tls.required && !session.secure) {
        // 530 5.7.0, as Postfix's smtpd_tls_security_level = encrypt
        return callback(smtpReply(530, 'Must issue a STARTTLS command first'));
      }
      if (auth.required && !session.user) {
        return callback(smtpReply(530, 'Authentication required'));
      }
      // flow control: while delivery lags behind, a new transaction waits for it a little
      const wait = deps.runner?.waitForRoom(config.smtp.inFlowDelayMs);
      if (!wait) return callback();
      const started = process.hrtime.bigint();
      log.debug('transaction waits for delivery to catch up', {
        sessionId: session.id,
        waiting: deps.runner?.waitingFirstAttempt,
      });
      void wait.then(() => {
        deps.metrics.flowDelaySeconds.observe(
          Number(process.hrtime.bigint() - started) / 1e9,
        );
        callback();
      });
    },
    onRcptTo: (address, session, callback) => {
      const refusal = checkRecipient(address, session, deps);
      if (!refusal && lmtp) rcptCommands.get(session)?.push(address.address);
      callback(refusal);
    },
    onData: (stream, session, callback) => {
      handleData(stream, session, deps).then(
        message =>
          callback(null, lmtp ? repliesFor(message, session) : message),
        (err: unknown) =>
          lmtp
            ? callback(null, repliesFor(toSmtpReply(err), session))
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

/** Logs and counts a session refused at its start; the error smtp-server replies with. */
function refuseSession(
  refusal: Refusal,
  session: SMTPServerSession,
  deps: SmtpDeps,
): Error {
  deps.metrics.refusedSessions.inc({ reason: refusal.reason });
  deps.log.info('session refused', {
    sessionId: session.id,
    remoteAddress: session.remoteAddress,
    reason: refusal.reason,
    code: refusal.responseCode,
  });
  // smtp-server sends a refused session's reply as it is, without an enhanced code of its own
  return smtpReply(refusal.responseCode, refusal.message);
}

function checkRecipient(
  address: SMTPServerAddress,
  session: SMTPServerSession,
  deps: SmtpDeps,
): Error | undefined {
  if (resolveRoute(address.address, deps.config.routes)) return undefined;
  deps.log.info('recipient rejected: no route', {
    sessionId: session.id,
    remoteAddress: session.remoteAddress,
    recipient: address.address,
    code: 550,
  });
  return toSmtpReply(
    new PermanentError('No such recipient here', { responseCode: 550 }),
  );
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
