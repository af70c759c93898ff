// Every SMTP refusal the daemon decides gets one `info` line of the same shape (who, which
// session, which command, which address, the code and why) and, at CONNECT, MAIL and RCPT, its
// counter: one place, so that the lines and the counters cannot drift apart.
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** What a refusal line tells of the session: smtp-server's session, or its connection. */
export interface RefusedSession {
  id: string;
  remoteAddress?: string;
  /** the HELO/EHLO/LHLO name; smtp-server has false before one was given */
  hostNameAppearsAs?: string | false;
}

/** A refusal, by the command it answered; the reasons are the counters' label values. */
export type Refusal = { code: number; address?: string | null } & (
  | { command: 'CONNECT'; reason: ConnectReason }
  | { command: 'MAIL'; reason: 'size' | 'tls' | 'auth' }
  | { command: 'RCPT'; reason: 'no_route' | 'too_many' }
  | { command: 'AUTH'; reason: 'credentials' | 'too_many_failures' }
  | { command: 'DATA'; reason: string }
);

type ConnectReason =
  | 'network'
  | 'connections'
  | 'rate'
  | 'logins'
  | 'limiter'
  | 'max_clients'
  | 'early_talker';

/** smtp-server's own refusals of a session: logged, not in the counter of ours. */
const OWN_CONNECT = new Set<ConnectReason>(['max_clients', 'early_talker']);

/**
 * The fields of a refusal line: client address, session id, HELO name, the command, the
 * address concerned (sender or recipient), the reply code and the reason. Never a body or a
 * password. DATA's outcome line carries them too (it is that refusal's one line).
 */
export function refusalFields(
  session: RefusedSession,
  refusal: Refusal,
): Record<string, unknown> {
  return {
    sessionId: session.id,
    remoteAddress: session.remoteAddress,
    helo: session.hostNameAppearsAs || undefined,
    command: refusal.command,
    address: refusal.address ?? undefined,
    code: refusal.code,
    reason: refusal.reason,
  };
}

/**
 * Logs one refusal at info (`message` says it in words, `extra` adds what only this kind
 * knows) and counts it: CONNECT in mailbridge_sessions_refused_total, MAIL in
 * mailbridge_smtp_mail_refused_total, RCPT in mailbridge_smtp_rcpt_refused_total (AUTH failures
 * are counted by result where every attempt is, DATA by the message outcome).
 */
export function logRefusal(
  deps: { log: Logger; metrics: Metrics },
  message: string,
  session: RefusedSession,
  refusal: Refusal,
  extra: Record<string, unknown> = {},
): void {
  const { metrics } = deps;
  if (refusal.command === 'MAIL') {
    metrics.mailRefused.inc({ reason: refusal.reason });
  } else if (refusal.command === 'RCPT') {
    metrics.rcptRefused.inc({ reason: refusal.reason });
  } else if (
    refusal.command === 'CONNECT' &&
    !OWN_CONNECT.has(refusal.reason)
  ) {
    metrics.refusedSessions.inc({ reason: refusal.reason });
  }
  deps.log.info(message, { ...refusalFields(session, refusal), ...extra });
}
