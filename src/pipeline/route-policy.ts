// The policy step of an attempt, on whichever thread runs it, before the parse: each route's
// noise policy (autoReplies, bulk: mail/noise.ts, judged from the envelope and the header
// block), then for the routes left the sender judged once (unless it was already, or no route
// asks) and each route's senderAuth policy. A route an operator released is never held or
// dropped again.
import type { RawMessage, SenderAuthenticator } from '../auth/sender-auth.js';
import {
  describe,
  policyOf,
  routeAction,
  type SenderAuth,
} from '../auth/verdict.js';
import type { RouteConfig } from '../config/schema.js';
import type { Envelope } from '../mail/envelope.js';
import { headerBlock, readHeaderBytes } from '../mail/header-block.js';
import {
  classifyNoise,
  describeNoise,
  policyKeyOf,
  type Noise,
} from '../mail/noise.js';
import type { RouteGroup } from '../routing/resolve-route.js';

/** What a route does with noise of its kind: the route's key, else the contract's default. */
export type NoiseAction = 'deliver' | 'hold' | 'drop';

/** A route's action for `noise` (absent keys: autoReplies hold, bulk deliver). */
export function noiseAction(route: RouteConfig, noise: Noise): NoiseAction {
  const key = policyKeyOf(noise.kind);
  return route[key] ?? (key === 'autoReplies' ? 'hold' : 'deliver');
}

/** Why a route holds or drops `noise`: `auto-reply: Auto-Submitted: auto-replied (autoReplies: hold)`. */
export function noiseReason(noise: Noise, action: NoiseAction): string {
  return `${describeNoise(noise)} (${policyKeyOf(noise.kind)}: ${action})`;
}

/** What the policies made of an attempt's routes. */
export interface RoutePolicy {
  /** the sender's judgement: the one given, or made now; undefined when no route asked */
  auth?: SenderAuth;
  /** true when it was made now (count it once) */
  judged: boolean;
  /** what kind of noise the message is, if any */
  noise?: Noise;
  /**
   * the routes to post, in order; a failed sender's marked `untrustedSender` (thread guard),
   * all marked `noise` when the message is noise (its priority is not taken)
   */
  post: RouteGroup[];
  /** routes held by their policy, with the reason */
  held: Array<{ index: number; reason: string }>;
  /** routes whose policy drops the message: done, nothing posted; the reason */
  dropped: Array<{ index: number; reason: string }>;
  /** routes to try again later: DNS kept the judgement from being made (enforce) */
  deferred: Array<{ index: number; reason: string }>;
}

/**
 * Applies each group's noise policy, then judges the sender of `raw` for the groups left (with
 * `authenticator`, unless `known` is given or no group's policy asks) and applies each one's
 * senderAuth policy. Never throws (a header block that cannot be read is no noise).
 */
export async function applyRoutePolicy(
  groups: RouteGroup[],
  input: {
    raw: RawMessage;
    envelope: Envelope;
    known?: SenderAuth;
    authenticator?: SenderAuthenticator;
  },
): Promise<RoutePolicy> {
  // read once: its text for the noise policy, its bytes for sender authentication
  const header = await readHeaderBytes(input.raw).catch(() => undefined);
  const headers = header ? headerBlock(header) : '';
  const noise = classifyNoise(headers, nullSender(input.envelope)) ?? undefined;
  const policy: RoutePolicy = {
    judged: false,
    noise,
    post: [],
    held: [],
    dropped: [],
    deferred: [],
  };
  const rest: RouteGroup[] = [];
  for (const group of groups) {
    // a route an operator released is posted whatever the message is
    const action =
      noise && !group.released ? noiseAction(group.route, noise) : 'deliver';
    if (action === 'deliver') {
      rest.push(noise ? { ...group, noise: noise.kind } : group);
      continue;
    }
    const reason = noiseReason(noise!, action);
    const list = action === 'hold' ? policy.held : policy.dropped;
    list.push({ index: group.index, reason });
  }
  await applySenderAuth(rest, input, header, policy);
  return policy;
}

/** The sender's judgement (made now if needed) and each of `groups`' senderAuth policy. */
async function applySenderAuth(
  groups: RouteGroup[],
  input: Parameters<typeof applyRoutePolicy>[1],
  header: Buffer | undefined,
  policy: RoutePolicy,
): Promise<void> {
  const asks = groups.some(g => policyOf(g.route) !== 'off');
  let auth = input.known;
  if (!auth && asks && input.authenticator) {
    auth = await input.authenticator.evaluate(
      input.raw,
      input.envelope,
      header,
    );
    policy.judged = true;
  }
  policy.auth = auth;
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
}

/**
 * The envelope sender was `MAIL FROM:<>`. A message spooled by `inject` (or previewed) without
 * `--from` has no envelope sender to judge: no client address, so not taken for a null sender.
 */
function nullSender(envelope: Envelope): boolean {
  return envelope.mailFrom === null && envelope.remoteAddress !== undefined;
}
