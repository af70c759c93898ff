// Session start and end: the allowed networks, then the per-client count, given back at close.
import type { SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { allowedNetworks } from '../config/networks.js';
import { smtpReply } from '../errors/to-smtp-reply.js';
import {
  networkRefusal,
  type ClientCounter,
  type Refusal,
} from './client-access.js';
import { logRefusal } from './refusal-log.js';
import type { SmtpDeps } from './smtp-deps.js';

/**
 * onConnect (after the PROXY header, if any: remoteAddress is then the client's) and onClose:
 * every session the limiter counted is given back once, even one that closed while a cluster's
 * primary was still being asked.
 */
export function connectHandlers(
  deps: SmtpDeps,
  limiter: ClientCounter,
): Required<Pick<SMTPServerOptions, 'onConnect' | 'onClose'>> {
  const { config, log } = deps;
  const allowed = allowedNetworks(config.smtp.allowedNetworks);
  /** the sessions the limiter counted, with their client address: given back when they close */
  const counted = new Map<string, string>();
  /** sessions whose count the limiter has not answered yet, by id: true once they closed */
  const asking = new Map<string, boolean>();
  return {
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
  };
}

/** Logs and counts a session refused at its start; the error smtp-server replies with. */
function refuseSession(
  refusal: Refusal,
  session: SMTPServerSession,
  deps: SmtpDeps,
): Error {
  logRefusal(deps, 'session refused', session, {
    command: 'CONNECT',
    reason: refusal.reason,
    code: refusal.responseCode,
  });
  // smtp-server sends a refused session's reply as it is, without an enhanced code of its own
  return smtpReply(refusal.responseCode, refusal.message);
}
