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
): Required<Pick<SMTPServerOptions, 'onConnect' | 'onClose'>> & {
  followClient: ClientFollower;
} {
  const { config, log } = deps;
  // built again only when a reload brings another list
  let networks = config.smtp.allowedNetworks;
  let isAllowed = allowedNetworks(networks);
  const allowed = (address: string): boolean => {
    if (config.smtp.allowedNetworks !== networks) {
      networks = config.smtp.allowedNetworks;
      isAllowed = allowedNetworks(networks);
    }
    return isAllowed(address);
  };
  /** the sessions the limiter counted, with their client address: given back when they close */
  const counted = new Map<string, string>();
  /** sessions whose count the limiter has not answered yet, by id: true once they closed */
  const asking = new Map<string, boolean>();
  /** sessions waiting for their greeting (smtp.greetingDelayMs), by id */
  const pausing = new Map<string, NodeJS.Timeout>();
  /**
   * Greets after smtp.greetingDelayMs: smtp-server greets once onConnect calls back, and answers
   * a client that talks before that `421 You talk too soon` and closes (an early talker).
   */
  const greet = (session: SMTPServerSession, callback: () => void) => {
    const delay = deps.config.smtp.greetingDelayMs;
    if (delay <= 0) return callback();
    pausing.set(
      session.id,
      setTimeout(() => {
        pausing.delete(session.id);
        callback();
      }, delay),
    );
  };
  return {
    onConnect: (session, callback) => {
      const answer = (refusal: Refusal | undefined) => {
        if (!refusal) {
          counted.set(session.id, session.remoteAddress);
          return greet(session, callback);
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
    followClient: session => {
      const countedAs = counted.get(session.id);
      const client = session.remoteAddress;
      // only XCLIENT hands the session over (XFORWARD names a client per transaction)
      if (!session.xClient?.has('ADDR') || countedAs === undefined) return;
      if (countedAs === client) return;
      const move = (refusal: Refusal | undefined) => {
        if (refusal) return refuseForwarded(refusal, session, deps);
        // the relay's count is given back; the client's is given back when the session closes
        if (counted.has(session.id)) {
          counted.set(session.id, client);
          limiter.close(countedAs);
        } else limiter.close(client);
        return undefined;
      };
      const refusal = limiter.open(client);
      return refusal instanceof Promise ? refusal.then(move) : move(refusal);
    },
    onClose: session => {
      clearTimeout(pausing.get(session.id));
      pausing.delete(session.id);
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

/**
 * Moves a session a trusted relay handed over with XCLIENT from the relay's count to its
 * client's, as a PROXY header's client is counted (once, at its first MAIL FROM); the refusal
 * when the client is past its limits.
 */
export type ClientFollower = (
  session: SMTPServerSession,
) => Error | undefined | Promise<Error | undefined>;

/** Logs and counts a forwarded client past its limits; the error its MAIL FROM gets. */
function refuseForwarded(
  refusal: Refusal,
  session: SMTPServerSession,
  deps: SmtpDeps,
): Error {
  logRefusal(deps, 'forwarded client refused', session, {
    command: 'CONNECT',
    reason: refusal.reason,
    code: refusal.responseCode,
  });
  // the text without its 4.7.0: at MAIL FROM smtp-server then gives its own 4.4.2 for 421, as
  // docs/configuration.md (smtp.xclient) says
  const text = refusal.message.replace(/^\d\.\d{1,3}\.\d{1,3} /, '');
  return smtpReply(refusal.responseCode, text);
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
