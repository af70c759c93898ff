// SMTP AUTH: the accounts' credentials, and failed logins counted per session and per client.
import type { SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { smtpReply } from '../errors/to-smtp-reply.js';
import type { ClientCounter } from './client-access.js';
import { checkCredentials } from './smtp-auth.js';
import { logRefusal } from './refusal-log.js';
import type { SmtpDeps } from './smtp-deps.js';

/** Failed logins (SMTP AUTH) a session may make; the last one closes it. */
const LOGIN_FAILURES_PER_SESSION = 3;

/**
 * onAuth, and `forget` for a session that closed (its failed logins are counted no longer).
 * Protocol refusals (535, and 421 that closes the session) are SMTP policy: smtpReply directly.
 */
export function authHandlers(
  deps: SmtpDeps,
  limiter: ClientCounter,
): Required<Pick<SMTPServerOptions, 'onAuth'>> & {
  forget(session: SMTPServerSession): void;
} {
  const { log } = deps;
  const auth = deps.config.smtp.auth;
  /** failed logins of each session still open, by session id */
  const loginFailures = new Map<string, number>();
  return {
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
        // the username (never the password) says which account was tried
        logRefusal(
          deps,
          'authentication failed',
          session,
          {
            command: 'AUTH',
            reason: closing ? 'too_many_failures' : 'credentials',
            code: closing ? 421 : 535,
          },
          { username, method: login.method },
        );
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
    forget: session => {
      loginFailures.delete(session.id);
    },
  };
}
