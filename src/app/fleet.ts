// A fleet (state.redis.url): the shared state composed over the local one, for the daemon and a
// cluster's primary. Without a Redis every part is the local one, unchanged.
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import type { DedupeRecords } from '../dedupe/dedupe-records.js';
import { FleetDedupe } from '../dedupe/fleet-dedupe.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { FleetView } from '../observability/status.js';
import type { ClientCounter } from '../smtp/client-access.js';
import { clientLimits } from '../smtp/create-smtp-server.js';
import { FleetLimiter } from '../smtp/fleet-limiter.js';
import { FleetStatus } from '../state/fleet-status.js';

export interface Fleet {
  /** the local records, with the fleet's over them */
  dedupe(local: DedupeRecords, windowMs: number): DedupeRecords;
  /** the local client counts, with the fleet's over them */
  limiter(local: ClientCounter): ClientCounter;
  /** Publishes this instance's spool counts under `<host>:<smtpPort>` (one publisher a spool). */
  publish(
    counts: () => Promise<Record<string, number>>,
    smtpPort: number,
  ): void;
  /** The fleet part of /status; undefined without a Redis. */
  view(): Promise<FleetView | undefined>;
  /** Stops publishing and closes the connection; safe to call twice. */
  close(): Promise<void>;
}

/** How long a claim holds a route's key while one instance posts it (see FleetDedupe). */
function claimMs(config: Config): number {
  // the API's timeout, twice (a 413 is posted again trimmed), and room for the attempt around it
  return config.api.timeoutMs * 2 + 30_000;
}

/**
 * Connects to the fleet's Redis, waiting for the first answer at most a few seconds: a Redis
 * that is away at the start is logged, and the instance starts on local state.
 */
export async function startFleet(
  config: Config,
  log: Logger,
  /** absent in a cluster's primary: its workers count (their metrics are summed) */
  metrics?: Metrics,
): Promise<Fleet> {
  const { url } = config.state.redis;
  metrics?.redisUp.set(0);
  if (url === null) {
    return {
      dedupe: local => local,
      limiter: local => local,
      publish: async () => undefined,
      view: async () => undefined,
      close: async () => undefined,
    };
  }
  // ioredis is loaded only for a fleet: a single instance never carries it
  const { SharedState } = await import('../state/shared-state.js');
  const shared = new SharedState(
    { ...config.state.redis, url },
    log.child({ stage: 'redis' }),
    {
      availability: up => metrics?.redisUp.set(up ? 1 : 0),
      fallback: op => metrics?.redisFallbacks.inc({ op }),
    },
  );
  await shared.connected();
  let status: FleetStatus | undefined;
  // an instance that publishes nothing (sync mode: no spool counts) still reads the others'
  const reader = new FleetStatus(shared, '', async () => ({}));
  let closed: Promise<void> | undefined;
  return {
    dedupe: (local, windowMs) =>
      // dry-run records nothing (window 0): nor does the fleet
      windowMs > 0
        ? new FleetDedupe(local, shared, { windowMs, claimMs: claimMs(config) })
        : local,
    limiter: local =>
      new FleetLimiter(local, shared, {
        limits: clientLimits(config),
        sessionMs: config.smtp.sessionTimeoutMs,
      }),
    publish: async (counts, smtpPort) => {
      // the spool's `queue` state is what the fleet view calls waiting
      const published = async () => {
        const { queue = 0, ...rest } = await counts();
        return { waiting: queue, ...rest };
      };
      status = new FleetStatus(shared, `${hostname()}:${smtpPort}`, published);
      await status.start();
    },
    view: async () => {
      const counts = await (status ?? reader).read();
      return {
        redis: shared.status(),
        ...(status ? { instance: status.instance } : {}),
        ...(counts ?? {}),
      };
    },
    close: () => {
      closed ??= (async () => {
        await status?.close();
        await shared.close();
      })();
      return closed;
    },
  };
}
