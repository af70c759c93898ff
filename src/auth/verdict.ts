// PURE: what mailauth's results say of a message's sender, and what a route's senderAuth policy
// makes of that. No I/O: the evaluation itself is sender-auth.ts's.
import { createRequire } from 'node:module';
import type { AuthenticateResult } from 'mailauth';
import type { RouteConfig } from '../config/schema.js';

/** mailauth's relaxed alignment (Organizational Domains by the Public Suffix List). */
const { getAlignment } = createRequire(import.meta.url)(
  'mailauth/lib/tools.js',
) as {
  getAlignment(from: string, domains: string[], strict: boolean): unknown;
};

/** A route's policy (contract: off | record | enforce). */
export type SenderAuthPolicy = 'off' | 'record' | 'enforce';

/** A route's policy; absent (the default, and entries spooled before it existed): record. */
export function policyOf(
  route: Pick<RouteConfig, 'senderAuth'>,
): SenderAuthPolicy {
  return route.senderAuth ?? 'record';
}

/**
 * The judgement on a message's From:
 * - `pass`: DMARC passed; or, where the From domain publishes no DMARC record, an SPF or DKIM
 *   pass aligned with it;
 * - `fail`: DMARC failed (whatever the policy), or the From header names no single domain;
 * - `none`: nothing could be checked (no DMARC record, and nothing aligned passed);
 * - `temperror`: a DNS failure kept DMARC from a conclusion (or the evaluation ran out of time).
 */
export type Verdict = 'pass' | 'fail' | 'none' | 'temperror';

/** What is kept of an evaluation: in the queue entry, the outcome log line and the metrics. */
export interface SenderAuth {
  /** spf result: pass, fail, softfail, neutral, none, temperror, permerror */
  spf: string;
  /** the best DKIM result of the message's signatures (pass first), none without one */
  dkim: string;
  /** dmarc result: pass, fail, none, temperror, permerror */
  dmarc: string;
  /** the DMARC policy that applies to a failure (none | quarantine | reject), if a record says */
  policy?: string;
  /** arc result: pass, fail, none (recorded only: see docs/configuration.md) */
  arc: string;
  /** the From domain judged, when there is one */
  domain?: string;
  verdict: Verdict;
  /**
   * The evaluation ran out of time (a temperror): unlike a DNS failure, which a stranger cannot
   * cause for someone else's domain, slowness can be bought with one's own slow DNS, so the
   * thread guard does not trust it
   */
  late?: true;
}

/** Results in the order a signature's is chosen to stand for the message's DKIM. */
const DKIM_RANK = [
  'pass',
  'fail',
  'policy',
  'neutral',
  'temperror',
  'permerror',
];

/** The summary of one authenticate() result. */
export function summarise(result: AuthenticateResult): SenderAuth {
  const spf = result.spf ? result.spf.status.result : 'none';
  const signatures = result.dkim?.results ?? [];
  const dkimResults: string[] = signatures.map(s => s.status.result);
  const dkim =
    DKIM_RANK.find(r => dkimResults.includes(r)) ?? dkimResults[0] ?? 'none';
  const arc = result.arc ? result.arc.status.result : 'none';
  const dmarc = result.dmarc;
  const domain =
    (dmarc && (dmarc.status.header?.from as string | undefined)) ||
    fromDomain(result);
  const summary: SenderAuth = {
    spf,
    dkim,
    dmarc: dmarc ? dmarc.status.result : 'none',
    arc,
    verdict: 'none',
  };
  if (domain) summary.domain = domain;
  if (dmarc && dmarc.policy) summary.policy = dmarc.policy;
  summary.verdict = verdictOf(result, summary);
  return summary;
}

/** The verdict of one result (see Verdict). */
function verdictOf(result: AuthenticateResult, summary: SenderAuth): Verdict {
  const dmarc = result.dmarc;
  // no single author domain (several From fields or domains, none at all): RFC 9989 section
  // 11.5 calls it suspicious, and no check can vouch for it
  if (!dmarc) return 'fail';
  const status = dmarc.status.result;
  if (status === 'pass' || status === 'fail' || status === 'temperror') {
    return status;
  }
  // no DMARC record: the From domain is vouched for only by an aligned pass
  const spfDomain = result.spf ? result.spf.domain : undefined;
  const alignedSpf =
    summary.spf === 'pass' &&
    summary.domain !== undefined &&
    spfDomain !== undefined &&
    Boolean(getAlignment(summary.domain, [spfDomain], false));
  const alignedDkim = (result.dkim?.results ?? []).some(
    s => s.status.result === 'pass' && Boolean(s.status.aligned),
  );
  return alignedSpf || alignedDkim ? 'pass' : 'none';
}

/** The domain of the one From address, when there is exactly one. */
function fromDomain(result: AuthenticateResult): string | undefined {
  const from = result.dkim?.headerFrom ?? [];
  if (from.length !== 1) return undefined;
  const at = from[0]!.lastIndexOf('@');
  return at >= 0 ? from[0]!.slice(at + 1).toLowerCase() : undefined;
}

/**
 * What a route does with a message, by its policy and the sender's judgement:
 * - `post`: as mapped;
 * - `guard`: posted without `thread_id` and `reply_to_ext_msg_id`, so that a forged sender
 *   starts a new ticket instead of writing into someone's thread (any failed sender, or one
 *   whose judgement ran out of time, unless the policy is off);
 * - `hold`: kept in `queue held` (enforce, DMARC quarantine; or reject when it is too late to
 *   refuse);
 * - `reject`: refused with 550 5.7.1 (enforce, DMARC reject, while the sender still waits);
 * - `defer`: tried again later (enforce, and DNS kept the judgement from being made).
 */
export type RouteAction = 'post' | 'guard' | 'hold' | 'reject' | 'defer';

export function routeAction(
  policy: SenderAuthPolicy,
  auth: SenderAuth | undefined,
  stage: 'data' | 'attempt',
): RouteAction {
  if (policy === 'off' || !auth) return 'post';
  if (policy === 'enforce') {
    if (auth.verdict === 'temperror') return 'defer';
    if (auth.verdict === 'fail' && auth.dmarc === 'fail') {
      if (auth.policy === 'reject') return stage === 'data' ? 'reject' : 'hold';
      if (auth.policy === 'quarantine') return 'hold';
    }
  }
  return auth.verdict === 'fail' || auth.late ? 'guard' : 'post';
}

/** One line's worth of an evaluation, for logs and reasons: `dmarc=fail (reject) spf=...`. */
export function describe(auth: SenderAuth): string {
  const policy = auth.policy ? ` (p=${auth.policy})` : '';
  const domain = auth.domain ? ` for ${auth.domain}` : '';
  const late = auth.late ? ' (out of time)' : '';
  return `dmarc=${auth.dmarc}${policy}${late} spf=${auth.spf} dkim=${auth.dkim} arc=${auth.arc}${domain}`;
}
