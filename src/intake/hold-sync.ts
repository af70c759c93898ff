// Sync mode has no queue, but a message a route's policy holds must not vanish with the 250: it
// is stored in held/ (listed by `queue held`, replayable) before the sender hears it.
import type { SenderAuth } from '../auth/verdict.js';
import type { Config } from '../config/schema.js';
import { fsyncFile } from '../lib/durable-fs.js';
import type { Envelope } from '../mail/envelope.js';
import { decide, type RouteResult } from '../pipeline/decide.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import { newQueueEntry } from '../spool/queue-entry.js';
import type { Spool } from '../spool/spool.js';
import type { Received } from './intake.js';

/**
 * Stores the message of `received` in held/ with the routes of `held` (their results: held,
 * or delivered without what the API could not take); the other routes are not in it (they were
 * delivered whole, or their recipients are answered on their own). Returns the queue id.
 */
export async function holdInSpool(
  received: Received,
  envelope: Envelope,
  groups: RouteGroup[],
  held: RouteResult[],
  extra: { auth?: SenderAuth; messageId: string | null },
  deps: {
    spool: Spool;
    config: Pick<Config, 'delivery'>;
    now: () => number;
  },
): Promise<string> {
  const indexes = new Set(held.map(r => r.index));
  const now = deps.now();
  const entry = {
    ...newQueueEntry({
      envelope,
      groups: groups.filter(g => indexes.has(g.index)),
      messageId: extra.messageId,
      size: received.size,
      now,
    }),
    fingerprint: received.fingerprint,
    ...(extra.auth ? { auth: extra.auth } : {}),
  };
  const result = decide(entry, held, {
    startedAt: now,
    now,
    retry: deps.config.delivery.retry,
    random: Math.random,
  });
  // sync mode receives without O_DSYNC: the only copy of the message is made durable first
  await fsyncFile(received.path);
  await deps.spool.commit(result.entry, received.path, 'held');
  return entry.id;
}
