// Which mailboxes and recipient domains a spooled message is still owed to, and the
// `--mailbox` / `--domain` filters of the queue commands built on that.
import type { QueueEntry, RouteState } from '../spool/queue-entry.js';

/** `--mailbox M` or `--domain D` (at most one), or nothing: every message. */
export interface EntryFilter {
  mailbox?: string;
  domain?: string;
}

/** A route's name in the queue tools: its mailbox_id, else its match (`*`, `*@example.org`). */
export function mailboxOf(route: RouteState): string {
  return route.route.mailbox_id ?? route.route.match;
}

/** The routes of a message not done yet: pending, failed or held (a dropped route is `delivered`, done). */
export function openRoutes(entry: QueueEntry): RouteState[] {
  return entry.routes.filter(r => r.status !== 'delivered');
}

/** The domain of an address, lower case ('' when it has none). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** What a message is still owed to, by mailbox or by recipient domain, each once, in order. */
export function keysOf(entry: QueueEntry, by: 'mailbox' | 'domain'): string[] {
  const routes = openRoutes(entry);
  const keys =
    by === 'mailbox'
      ? routes.map(mailboxOf)
      : routes.flatMap(r => r.recipients.map(domainOf));
  return [...new Set(keys)];
}

/** Whether the filter takes the message (no filter: every message). */
export function matchesFilter(entry: QueueEntry, filter: EntryFilter): boolean {
  if (filter.mailbox !== undefined) {
    return keysOf(entry, 'mailbox').includes(filter.mailbox);
  }
  if (filter.domain !== undefined) {
    return keysOf(entry, 'domain').includes(filter.domain.toLowerCase());
  }
  return true;
}

/**
 * Whether the message is owed to anything besides what the filter names: purging it would
 * drop that other mailbox's (or domain's) mail too.
 */
export function ownedByOthers(entry: QueueEntry, filter: EntryFilter): boolean {
  if (filter.mailbox !== undefined) {
    return keysOf(entry, 'mailbox').some(k => k !== filter.mailbox);
  }
  if (filter.domain !== undefined) {
    const domain = filter.domain.toLowerCase();
    return keysOf(entry, 'domain').some(k => k !== domain);
  }
  return false;
}
