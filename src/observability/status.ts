// The body of /status: whether mail is taken, whether delivery runs, what the spool holds.
import type { Metrics } from './metrics.js';

export interface DaemonStatus {
  /** as /readyz: mail is accepted */
  ready: boolean;
  /** why not, when not ready */
  notReady?: string;
  delivery: {
    mode: string;
    /** delivery stopped by a 401, 403 or 404 from the API: mail waits in the spool */
    paused: boolean;
    reason: string | null;
  };
  /** messages by spool folder, as of the last scan (queue mode) */
  spool?: Record<string, number>;
}

/** Messages by spool state, as the `mailbridge_spool_messages` gauge has them. */
export async function spoolCounts(
  metrics: Metrics,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { labels, value } of (await metrics.spool.get()).values) {
    counts[String(labels.state)] = value;
  }
  return counts;
}
