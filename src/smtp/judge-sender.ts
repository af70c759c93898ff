// The end of DATA, for a route that enforces sender authentication: judge the sender while it
// still waits, so that a DMARC reject is refused rather than accepted and dropped.
import { describe, routeAction, type SenderAuth } from '../auth/verdict.js';
import { PermanentError, TemporaryError } from '../errors/bridge-error.js';
import type { Envelope } from '../mail/envelope.js';
import { groupByRoute } from '../routing/resolve-route.js';
import type { ReceivedFile } from './receive-to-file.js';
import type { SmtpDeps } from './smtp-deps.js';

/**
 * The judgement of a message whose routes include one with `senderAuth: enforce` (undefined
 * when none does: the first attempt judges it, for the routes that record). Throws the refusal:
 * 550 5.7.1 for a DMARC fail of a p=reject domain, 451 when DNS kept the judgement from being
 * made. A quarantine is accepted: the attempt holds it (pipeline/attempt-routes.ts).
 */
export async function judgeAtData(
  deps: Pick<SmtpDeps, 'config' | 'senderAuth'>,
  envelope: Envelope,
  received: ReceivedFile,
): Promise<SenderAuth | undefined> {
  if (!deps.senderAuth) return undefined;
  const enforcing = groupByRoute(envelope.rcptTo, deps.config.routes).filter(
    g => g.route.senderAuth === 'enforce',
  );
  if (enforcing.length === 0) return undefined;
  const auth = await deps.senderAuth.evaluate(
    received.raw ?? { path: received.path, start: received.offset },
    envelope,
  );
  const actions = enforcing.map(() => routeAction('enforce', auth, 'data'));
  if (actions.includes('reject')) {
    throw new PermanentError(
      `5.7.1 Sender authentication failed (DMARC policy of ${auth.domain ?? 'the From domain'} is reject)`,
      { responseCode: 550 },
    );
  }
  if (actions.includes('defer')) {
    throw new TemporaryError(
      `sender authentication not concluded (DNS): ${describe(auth)}`,
    );
  }
  return auth;
}
