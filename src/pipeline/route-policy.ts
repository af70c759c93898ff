// The sender-authentication step of an attempt, on whichever thread runs it: the sender judged
// once (unless it was already, or no route asks), then each route's senderAuth policy applied.
import type { RawMessage, SenderAuthenticator } from '../auth/sender-auth.js';
import {
  describe,
  policyOf,
  routeAction,
  type SenderAuth,
} from '../auth/verdict.js';
import type { Envelope } from '../mail/envelope.js';
import type { RouteGroup } from '../routing/resolve-route.js';

/** What the policies made of an attempt's routes. */
export interface SenderPolicy {
  /** the sender's judgement: the one given, or made now; undefined when no route asked */
  auth?: SenderAuth;
  /** true when it was made now (count it once) */
  judged: boolean;
  /** the routes to post, in order; a failed sender's marked `untrustedSender` (thread guard) */
  post: RouteGroup[];
  /** routes held by their policy, with the reason */
  held: Array<{ index: number; reason: string }>;
  /** routes to try again later: DNS kept the judgement from being made (enforce) */
  deferred: Array<{ index: number; reason: string }>;
}

/**
 * Judges the sender of `raw` for `groups` (with `authenticator`, unless `known` is given or no
 * group's policy asks) and applies each group's policy. Never throws.
 */
export async function applySenderPolicy(
  groups: RouteGroup[],
  input: {
    raw: RawMessage;
    envelope: Envelope;
    known?: SenderAuth;
    authenticator?: SenderAuthenticator;
  },
): Promise<SenderPolicy> {
  const asks = groups.some(g => policyOf(g.route) !== 'off');
  let auth = input.known;
  let judged = false;
  if (!auth && asks && input.authenticator) {
    auth = await input.authenticator.evaluate(input.raw, input.envelope);
    judged = true;
  }
  const policy: SenderPolicy = {
    auth,
    judged,
    post: [],
    held: [],
    deferred: [],
  };
  for (const group of groups) {
    const action = routeAction(policyOf(group.route), auth, 'attempt');
    if (action === 'post') policy.post.push(group);
    else if (action === 'hold' && !group.released) {
      policy.held.push({
        index: group.index,
        reason: `sender authentication: ${describe(auth!)}`,
      });
    } else if (action === 'defer') {
      policy.deferred.push({
        index: group.index,
        reason: `sender authentication not concluded (DNS): ${describe(auth!)}`,
      });
    } else {
      // guard, or a hold an operator released: posted, but into no existing thread
      policy.post.push({ ...group, untrustedSender: true });
    }
  }
  return policy;
}
