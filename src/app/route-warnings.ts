// What an operator must hear about a route table, at start and after a SIGHUP brings a new one.
import type { RouteConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { resolveRoute } from '../routing/resolve-route.js';

/** Warns when no route takes postmaster mail (RFC 5321 requires the address). */
export function warnIfNoPostmaster(
  routes: readonly RouteConfig[],
  log: Logger,
): void {
  if (!resolveRoute('postmaster', routes)) {
    log.warn(
      'no route takes postmaster mail: RCPT TO:<postmaster> is refused; RFC 5321 requires it, ' +
        'so give one route postmaster: true',
    );
  }
}
