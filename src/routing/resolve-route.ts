// Recipient -> route: exact address, then "*@domain", then "*"; the most specific wins; postmaster
// mail to the route that says so.
import type { NoiseKind } from '../mail/noise.js';
import type { RouteConfig } from '../config/schema.js';
import { splitAddress } from './address.js';

/** A route chosen for a recipient, with its position in the table (a stable key). */
export interface RouteMatch {
  route: RouteConfig;
  index: number;
  /** the +subaddress of the recipient, when the route threads from it */
  threadId?: string;
}

/** The recipients of one message that share a route: they become one POST. */
export interface RouteGroup {
  route: RouteConfig;
  index: number;
  recipients: string[];
  threadId?: string;
  /**
   * An operator released this route of a held message (`queue replay`): no policy of the route
   * may hold or drop it again; it is posted like any other (see RouteState.released).
   */
  released?: true;
  /**
   * The sender failed authentication and the route judges it (senderAuth record or enforce):
   * posted without thread_id and reply_to_ext_msg_id (the thread guard, auth/verdict.ts).
   */
  untrustedSender?: boolean;
  /**
   * The message is machine-sent or list mail (mail/noise.ts) and the route delivers it: posted
   * with the normal priority, whatever its Priority, X-Priority or Importance say.
   */
  noise?: NoiseKind;
}

/** RFC 5321 4.5.1: the local part every domain we take mail for must accept, any case. */
const POSTMASTER = 'postmaster';

/**
 * Finds the route of one recipient, or null when none matches (the caller answers 550 5.1.1).
 * An exact pattern matches the address as written first, then without its +subaddress.
 * Postmaster mail (see postmasterRoute) comes after the exact patterns.
 */
export function resolveRoute(
  recipient: string,
  routes: readonly RouteConfig[],
): RouteMatch | null {
  const address = recipient.trim();
  const parts = splitAddress(address);
  if (!parts) {
    return address.toLowerCase() === POSTMASTER
      ? postmasterRoute(routes, null)
      : null;
  }
  const full = address.toLowerCase();
  const base = `${parts.local}@${parts.domain}`;
  return (
    matchPattern(routes, full) ??
    matchPattern(routes, base, parts.detail) ??
    (parts.local === POSTMASTER
      ? postmasterRoute(routes, parts.domain)
      : null) ??
    matchPattern(routes, `*@${parts.domain}`, parts.detail) ??
    matchPattern(routes, '*', parts.detail)
  );
}

/** The first route whose pattern is `pattern`; it threads from `detail` if it says so. */
function matchPattern(
  routes: readonly RouteConfig[],
  pattern: string,
  detail?: string,
): RouteMatch | null {
  const index = routes.findIndex(route => route.match === pattern);
  const route = routes[index];
  if (!route) return null;
  const threadId = route.thread_from_subaddress ? detail : undefined;
  return { route, index, threadId };
}

/**
 * Postmaster mail: `<postmaster>` (no domain), or postmaster@ a domain some route takes mail
 * for, goes to the route that says `postmaster: true`. Without one, `<postmaster>` goes to the
 * "*" route and postmaster@domain is routed as any address. Never another domain's: that would
 * make postmaster@ an open door.
 */
function postmasterRoute(
  routes: readonly RouteConfig[],
  domain: string | null,
): RouteMatch | null {
  if (domain !== null && !routes.some(route => covers(route, domain))) {
    return null;
  }
  let index = routes.findIndex(route => route.postmaster === true);
  if (index < 0 && domain === null) {
    index = routes.findIndex(route => route.match === '*');
  }
  const route = routes[index];
  return route ? { route, index } : null;
}

/** Whether a route takes mail for some address of `domain`. */
function covers(route: RouteConfig, domain: string): boolean {
  return route.match === '*' || route.match.endsWith(`@${domain}`);
}

/**
 * Groups the recipients of a message by route, in the order routes were first used.
 * Recipients without a route are left out (they were refused at RCPT).
 */
export function groupByRoute(
  recipients: readonly string[],
  routes: readonly RouteConfig[],
): RouteGroup[] {
  const groups = new Map<number, RouteGroup>();
  for (const recipient of recipients) {
    const match = resolveRoute(recipient, routes);
    if (!match) continue;
    let group = groups.get(match.index);
    if (!group) {
      group = { route: match.route, index: match.index, recipients: [] };
      groups.set(match.index, group);
    }
    group.recipients.push(recipient);
    group.threadId ??= match.threadId;
  }
  return [...groups.values()];
}
