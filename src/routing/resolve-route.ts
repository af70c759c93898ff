// Recipient -> route: exact address, then "*@domain", then "*"; the most specific wins.
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
}

/**
 * Finds the route of one recipient, or null when none matches (the caller answers 550 5.1.1).
 * An exact pattern matches the address as written first, then without its +subaddress.
 */
export function resolveRoute(
  recipient: string,
  routes: readonly RouteConfig[],
): RouteMatch | null {
  const parts = splitAddress(recipient.trim());
  if (!parts) return null;
  const full = recipient.trim().toLowerCase();
  const base = `${parts.local}@${parts.domain}`;
  const candidates = [full, base, `*@${parts.domain}`, '*'];
  for (const pattern of candidates) {
    const index = routes.findIndex(route => route.match === pattern);
    const route = routes[index];
    if (!route) continue;
    const threadId =
      route.thread_from_subaddress && pattern !== full
        ? parts.detail
        : undefined;
    return { route, index, threadId };
  }
  return null;
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
