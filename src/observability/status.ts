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
  /** with state.redis.url: the fleet's Redis, and what every instance holds */
  fleet?: FleetView;
}

/** The fleet part of /status (docs/scaling.md). */
export interface FleetView {
  /** whether this instance's Redis answers, since when, and how often local state answered alone */
  redis: { up: boolean; since: string; fallbacks: number };
  /** this instance's name in the rows (absent when it publishes none: sync mode) */
  instance?: string;
  /** the instances' counts summed (absent while Redis is away) */
  total?: Record<string, number>;
  /** each instance that published within the last 15 s: its counts as of `at` */
  instances?: Array<{
    instance: string;
    at: string;
    counts: Record<string, number>;
  }>;
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

/** Where a process's /status comes from: a daemon's, or a cluster primary's for its workers. */
export interface StatusSources {
  mode: string;
  notReadyReason(): Promise<string | null>;
  /** why delivery is paused (a 401, 403 or 404 from the API), or null */
  pausedReason(): string | null;
  /** messages by spool state, where this process reports a spool (queue and hybrid modes) */
  spool?: () => Promise<Record<string, number>>;
  fleet(): Promise<FleetView | undefined>;
}

/** The body of /status from its sources: one shape for a daemon and a cluster primary. */
export async function buildStatus(
  sources: StatusSources,
): Promise<DaemonStatus> {
  const reason = await sources.notReadyReason();
  const paused = sources.pausedReason();
  const spool = await sources.spool?.();
  const fleet = await sources.fleet();
  return {
    ready: reason === null,
    ...(reason === null ? {} : { notReady: reason }),
    delivery: { mode: sources.mode, paused: paused !== null, reason: paused },
    ...(spool ? { spool } : {}),
    ...(fleet ? { fleet } : {}),
  };
}
