// RCPT TO: a recipient no route takes is refused (550 5.1.1), postmaster as resolveRoute says;
// LMTP counts the accepted ones.
import type {
  SMTPServerAddress,
  SMTPServerOptions,
  SMTPServerSession,
} from 'smtp-server';
import { PermanentError } from '../errors/bridge-error.js';
import { toSmtpReply } from '../errors/to-smtp-reply.js';
import { resolveRoute } from '../routing/resolve-route.js';
import type { RcptCommands } from './rcpt-commands.js';
import { logRefusal } from './refusal-log.js';
import type { SmtpDeps } from './smtp-deps.js';

/** onRcptTo: the route check; with LMTP, each accepted command is remembered for its reply. */
export function rcptToHandler(
  deps: SmtpDeps,
  rcpts: RcptCommands | undefined,
): NonNullable<SMTPServerOptions['onRcptTo']> {
  return (address, session, callback) => {
    const refusal = checkRecipient(address, session, deps);
    if (!refusal) rcpts?.add(session, address.address);
    callback(refusal);
  };
}

function checkRecipient(
  address: SMTPServerAddress,
  session: SMTPServerSession,
  deps: SmtpDeps,
): Error | undefined {
  if (resolveRoute(address.address, deps.config.routes)) return undefined;
  logRefusal(deps, 'recipient rejected: no route', session, {
    command: 'RCPT',
    reason: 'no_route',
    address: address.address,
    code: 550,
  });
  return toSmtpReply(
    new PermanentError('No such recipient here', { responseCode: 550 }),
  );
}
