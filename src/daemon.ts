// Composition root of `serve`: logger, sink, SMTP listener, health/metrics HTTP, shutdown.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { SMTPServer } from 'smtp-server';
import { maskUrl } from './config/mask-secrets.js';
import type { Config } from './config/schema.js';
import { ApiClient } from './deliver/api-client.js';
import { DryRunSink } from './deliver/dry-run-sink.js';
import type { PayloadSink } from './deliver/payload-sink.js';
import { BridgeError } from './errors/bridge-error.js';
import { startHealthServer } from './observability/health-server.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createSmtpServer } from './smtp/create-smtp-server.js';

export interface Daemon {
  smtpPort: number;
  /** port of /healthz, /readyz, /metrics; null when http.enabled is false */
  httpPort: number | null;
  dryRun: boolean;
  metrics: Metrics;
  /** Stops accepting, lets open sessions finish within smtp.closeTimeoutMs; safe to call twice. */
  close(): Promise<void>;
}

/** True when bodies are written to disk instead of posted: no token, not production. */
export function isDryRun(
  config: Config,
  nodeEnv = process.env.NODE_ENV,
): boolean {
  return !config.api.token && nodeEnv !== 'production';
}

/** Starts every part of the daemon on the given configuration. */
export async function startDaemon(
  config: Config,
  log: Logger,
): Promise<Daemon> {
  const spoolDir = resolve(config.spool.dir);
  const tmpDir = join(spoolDir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const metrics = createMetrics();
  const dryRun = isDryRun(config);
  const sink = countPosts(
    dryRun
      ? new DryRunSink(spoolDir, log.child({ stage: 'dry-run' }))
      : new ApiClient(config.api, log.child({ stage: 'api' })),
    metrics,
  );

  const smtp = createSmtpServer({
    config,
    log: log.child({ stage: 'smtp' }),
    metrics,
    sink,
    tmpDir,
  });
  const smtpPort = await listen(smtp, config.smtp.port, config.smtp.host);
  let closing = false;
  let health: Server | undefined;
  let httpPort: number | null = null;
  if (config.http.enabled) {
    const started = await startHealthServer({
      host: config.http.host,
      port: config.http.port,
      metrics,
      notReadyReason: () => (closing ? 'shutting down' : null),
    });
    health = started.server;
    httpPort = started.port;
  }
  log.info('mailbridge started', {
    smtp: `${config.smtp.host}:${smtpPort}`,
    http: httpPort === null ? 'off' : `${config.http.host}:${httpPort}`,
    mode: config.delivery.mode,
    dryRun,
    spool: spoolDir,
    api: dryRun ? null : maskUrl(config.api.url),
  });

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      log.info('mailbridge stopping');
      await new Promise<void>(done => smtp.close(() => done()));
      await sink.close();
      if (health) {
        health.closeAllConnections();
        await new Promise<void>(done => health.close(() => done()));
      }
      log.info('mailbridge stopped');
    })();
    return closed;
  };
  return { smtpPort, httpPort, dryRun, metrics, close };
}

/** The sink, counting each body in `mailbridge_api_posts_total` by result. */
export function countPosts(sink: PayloadSink, metrics: Metrics): PayloadSink {
  return {
    kind: sink.kind,
    async send(payload, context) {
      try {
        await sink.send(payload, context);
      } catch (err) {
        const permanent = err instanceof BridgeError && !err.temporary;
        metrics.posts.inc({ result: permanent ? 'permanent' : 'temporary' });
        throw err;
      }
      metrics.posts.inc({
        result: sink.kind === 'dry-run' ? 'dry_run' : 'delivered',
      });
    },
    close: () => sink.close(),
  };
}

function listen(
  server: SMTPServer,
  port: number,
  host: string,
): Promise<number> {
  return new Promise((done, fail) => {
    server.server.once('error', fail);
    server.listen(port, host, () => {
      server.server.off('error', fail);
      done((server.server.address() as AddressInfo).port);
    });
  });
}
