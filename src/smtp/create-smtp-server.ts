// The SMTP listener: smtp-server's options, and one handler per stage wired from the on-*.ts files.
import { hostname } from 'node:os';
import { SMTPServer } from 'smtp-server';
import type { Config } from '../config/schema.js';
import { errorFields } from '../observability/logger.js';
import {
  isClientError,
  smtpLoggerAdapter,
} from '../observability/smtp-logger-adapter.js';
import { ClientLimiter, type ClientLimits } from './client-access.js';
import { authHandlers } from './on-auth.js';
import { connectHandlers } from './on-connect.js';
import { dataHandler } from './on-data.js';
import { mailFromHandler } from './on-mail-from.js';
import { rcptToHandler } from './on-rcpt-to.js';
import { RcptCommands } from './rcpt-commands.js';
import { OwnReplies } from './own-replies.js';
import { loadServerTls } from './server-tls.js';
import { SessionDeadlines, type DeadlineLimits } from './session-deadlines.js';
import { AUTH_METHODS } from './smtp-auth.js';
import type { SmtpDeps } from './smtp-deps.js';

export type { SmtpDeps } from './smtp-deps.js';

/** The per-client limits of the configuration. */
export function clientLimits(config: Pick<Config, 'smtp'>): ClientLimits {
  return {
    maxConnections: config.smtp.maxConnectionsPerClient,
    perMinute: config.smtp.connectionRatePerClient,
  };
}

/** The deadlines of a session, a command line and a DATA (smtp.*TimeoutMs, smtp.dataMinRate). */
export function deadlineLimits(config: Pick<Config, 'smtp'>): DeadlineLimits {
  return {
    commandMs: config.smtp.commandTimeoutMs,
    dataMs: config.smtp.dataTimeoutMs,
    dataMinRate: config.smtp.dataMinRate,
    dataMaxBytes: config.smtp.maxMessageSize,
    sessionMs: config.smtp.sessionTimeoutMs,
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
  const ownReplies = new OwnReplies({
    log,
    metrics: deps.metrics,
    maxSize: config.smtp.maxMessageSize,
    connections: () => server.connections,
  });
  const logins = authHandlers(deps, limiter);
  // smtp-server's socketTimeout is an idle time, which one byte resets: these are not
  const deadlines: SessionDeadlines = new SessionDeadlines(
    deadlineLimits(config),
    deps,
    () => server.connections,
  );
  const server: SMTPServer = new SMTPServer({
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
    logger: smtpLoggerAdapter(log, (meta, fmt, line) =>
      ownReplies.observe(meta, fmt, line),
    ) as never,
    onConnect: (session, callback) =>
      connect.onConnect(session, err => {
        // an admitted session's deadlines start now
        if (!err) deadlines.start(session);
        callback(err);
      }),
    onSecure: deadlines.onSecure,
    onClose: (session, callback) => {
      deadlines.stop(session);
      logins.forget(session);
      connect.onClose(session, callback);
    },
    onMailFrom: mailFromHandler(deps, rcpts),
    onRcptTo: rcptToHandler(deps, rcpts),
    onData: deadlines.watchData(dataHandler(deps, rcpts)),
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
