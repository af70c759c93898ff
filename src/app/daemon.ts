// Composition root of `serve`: logger, sink, SMTP listener, health/metrics HTTP, shutdown.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { SMTPServer } from 'smtp-server';
import { assertDryRunOnLoopback, isDryRun } from '../config/dry-run.js';
import { maskUrl } from '../config/mask-secrets.js';
import type { Environment } from '../config/environment.js';
import type { Config } from '../config/schema.js';
import { LiveConfig } from '../config/live-config.js';
import { reloadConfig, type ReloadResult } from './reload.js';
import { ApiClient } from '../api/api-client.js';
import { QueueRunner } from '../queue/queue-runner.js';
import { DryRunSink } from '../api/dry-run-sink.js';
import { countPosts } from '../api/counting-sink.js';
import { createIntake } from '../intake/accept.js';
import { SenderAuthenticator } from '../auth/sender-auth.js';
import { startHealthServer } from '../observability/health-server.js';
import { buildStatus, spoolCounts } from '../observability/status.js';
import { errorFields, type Logger } from '../observability/logger.js';
import { DedupeStore } from '../dedupe/dedupe-store.js';
import { Spool } from '../spool/spool.js';
import { lockSpool } from '../spool/spool-lock.js';
import { spoolProblem } from '../spool/usable.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { ClientLimiter, type ClientCounter } from '../smtp/client-access.js';
import { startFleet } from './fleet.js';
import { warnIfNoPostmaster } from './route-warnings.js';
import { clientLimits, createSmtpServer } from '../smtp/create-smtp-server.js';
import { loadServerTls } from '../smtp/server-tls.js';
import { notifyReady } from './notify-ready.js';

export interface Daemon {
  smtpPort: number;
  /** port of /healthz, /readyz, /metrics; null when http.enabled is false */
  httpPort: number | null;
  dryRun: boolean;
  metrics: Metrics;
  spool: Spool;
  /** the delivery workers; absent in sync mode */
  runner?: QueueRunner;
  /**
   * Reads smtp.tls's key and certificate again (a renewed certificate) for the sessions that
   * start from now on; SIGHUP calls it. False when there is no TLS, or the files cannot be
   * used: the certificate in use then stays, and the reason is logged.
   */
  reloadTls(): boolean;
  /**
   * SIGHUP: loads the configuration with `load` and puts in force what a running daemon can
   * take (routes, limits, AUTH, log level; config/config-changes.ts), without dropping a
   * session; then reads the TLS files again. An invalid configuration changes nothing.
   */
  reload(load: () => Config): ReloadResult;
  /** Stops accepting, lets open sessions finish within smtp.closeTimeoutMs; safe to call twice. */
  close(): Promise<void>;
}

/** Test seams: the clock and the randomness of the retry schedule. */
export interface DaemonOptions {
  /**
   * NODE_ENV and the proxy variables, read with the configuration; without it: not production,
   * and axios looks for a proxy itself
   */
  environment?: Environment;
  now?: () => number;
  random?: () => number;
  /** mend the spool at start; false in cluster workers (the primary did) */
  recover?: boolean;
  /** serve /healthz, /readyz, /metrics here; false in cluster workers (the primary does) */
  http?: boolean;
  /** told when delivery pauses (with the reason) or resumes (null) */
  onPauseChange?: (reason: string | null) => void;
  /** the start-up log line; cluster workers say "worker started" */
  startedMessage?: string;
  /** this process's claim folder in the spool (cluster worker n: `active-<n>`) */
  claimDir?: string;
  /** where the per-client limits are counted; a cluster worker's primary counts for all */
  limiter?: ClientCounter;
}

/** How often old dedupe records are pruned. */
const DEDUPE_PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/** Starts every part of the daemon on the given configuration. */
export async function startDaemon(
  initial: Config,
  log: Logger,
  options: DaemonOptions = {},
): Promise<Daemon> {
  // every part reads the configuration through this view: a reload replaces what it shows
  const live = new LiveConfig(initial);
  const config = live.view;
  // before anything is opened: serve checked it already, an embedding caller may not have
  assertDryRunOnLoopback(config, options.environment?.nodeEnv);
  const spool = await new Spool(
    resolve(config.spool.dir),
    options.claimDir,
  ).init();
  // a cluster worker runs under its primary's lock; everyone else takes it before recovery
  const unlock =
    options.recover === false
      ? async () => undefined
      : await lockSpool(spool.dir);
  const metrics = createMetrics();
  // state.redis.url: dedupe records and client limits shared with the fleet (app/fleet.ts)
  const fleet = await startFleet(config, log, metrics);
  const dryRun = isDryRun(config, options.environment?.nodeEnv);
  const sink = countPosts(
    dryRun
      ? new DryRunSink(spool.dir, log.child({ stage: 'dry-run' }))
      : new ApiClient(
          config.api,
          log.child({ stage: 'api' }),
          options.now,
          config.mapping,
          options.environment,
          { dns: config.auth.dns, hostname: config.smtp.hostname },
          seconds => metrics.apiPostSeconds.observe(seconds),
          config.smtp.maxMessageSize,
        ),
    metrics,
  );
  // the post thread is up before the first message arrives
  await sink.ready?.();
  // dry-run delivers nothing: it neither records nor skips, so that once a token is set a
  // message first seen in dry-run is still posted when it comes again
  const dedupeWindowMs =
    sink.kind === 'dry-run' ? 0 : config.delivery.dedupeWindowMs;
  const localDedupe = new DedupeStore(
    join(spool.dir, 'dedupe'),
    dedupeWindowMs,
    options.now,
    // each process appends to its own log; a cluster's workers also read each other's
    {
      name: options.claimDir ?? 'active',
      shared: options.recover === false,
      maxRecords: config.delivery.dedupeMaxRecords,
    },
  );
  const dedupe = fleet.dedupe(localDedupe, dedupeWindowMs);
  // one per process: its DNS cache serves every message
  const senderAuth = new SenderAuthenticator({
    dns: config.auth.dns,
    hostname: config.smtp.hostname,
    observe: auth => metrics.senderAuth.inc({ verdict: auth.verdict }),
  });
  let runner: QueueRunner | undefined;
  if (config.delivery.mode !== 'sync') {
    runner = new QueueRunner({
      config,
      spool,
      dedupe,
      sink,
      senderAuth,
      log: log.child({ stage: 'deliver' }),
      metrics,
      now: options.now,
      random: options.random,
      onPauseChange: options.onPauseChange,
    });
    if (options.recover === false) {
      // a cluster worker takes back what the worker it replaces had claimed when it died
      const damaged: string[] = [];
      const requeued = await spool.requeueClaims(undefined, damaged);
      if (requeued) log.warn('claims of a dead worker requeued', { requeued });
      logDamaged(log, damaged);
    } else {
      await recoverSpool(spool, log, (options.now ?? Date.now)());
    }
  }
  // sync mode records its deliveries in the same store (a resent message is not posted twice)
  const prune = () =>
    dedupe
      .prune()
      .then(removed => log.debug('dedupe records pruned', { removed }))
      .catch(err => log.error('dedupe prune failed', errorFields(err)));
  void prune();
  const pruner = setInterval(prune, DEDUPE_PRUNE_INTERVAL_MS);
  pruner.unref();

  const smtpLog = log.child({ stage: 'smtp' });
  const now = options.now ?? Date.now;
  const smtp = createSmtpServer({
    config,
    log: smtpLog,
    metrics,
    intake: createIntake({
      config,
      sink,
      spool,
      runner,
      dedupe,
      senderAuth,
      log: smtpLog,
      now,
    }),
    senderAuth,
    now,
    limiter: fleet.limiter(
      options.limiter ?? new ClientLimiter(clientLimits(config), now),
    ),
  });
  let smtpPort: number;
  try {
    smtpPort = await listen(smtp, config.smtp.port, config.smtp.host);
  } catch (err) {
    // nothing was claimed yet: the runner starts only once the port is ours
    clearInterval(pruner);
    await sink.close();
    await fleet.close();
    await unlock();
    throw err;
  }
  await runner?.start();
  // one publisher per spool: a cluster's primary publishes for its workers
  if (runner && options.recover !== false) {
    await fleet.publish(() => spoolCounts(metrics), smtpPort);
  }
  let closing = false;
  let health: Server | undefined;
  let httpPort: number | null = null;
  // "accepting mail": not while closing, nor while the spool cannot store (every mode receives
  // into it)
  const notReadyReason = async (): Promise<string | null> =>
    closing ? 'shutting down' : spoolProblem(spool);
  if (config.http.enabled && options.http !== false) {
    const started = await startHealthServer({
      host: config.http.host,
      port: config.http.port,
      metrics: metrics.registry,
      onError: err => log.error('health listener error', errorFields(err)),
      // a paused delivery still takes mail: it shows in /status, the metric and the log
      notReadyReason,
      status: () =>
        buildStatus({
          mode: config.delivery.mode,
          notReadyReason,
          pausedReason: () => runner?.pausedReason ?? null,
          spool: runner ? () => spoolCounts(metrics) : undefined,
          fleet: () => fleet.view(),
        }),
    });
    health = started.server;
    httpPort = started.port;
  }
  // a cluster worker (no recovery of its own) leaves these to its primary
  if (options.recover !== false) {
    logStartWarnings(config, log, dryRun, spool.dir);
  }
  log.info(options.startedMessage ?? 'mailbridge started', {
    pid: process.pid,
    claims: options.claimDir,
    smtp: `${config.smtp.host}:${smtpPort}`,
    http: httpPort === null ? 'off' : `${config.http.host}:${httpPort}`,
    mode: config.delivery.mode,
    dryRun,
    spool: spool.dir,
    api: dryRun ? null : maskUrl(config.api.url),
  });
  if (options.recover !== false) void notifyReady(options.environment, log);

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      log.info('mailbridge stopping');
      // new sessions get 421; open ones may finish their DATA within smtp.closeTimeoutMs
      await new Promise<void>(done => smtp.close(() => done()));
      clearInterval(pruner);
      await runner?.close();
      await sink.close();
      // the attempts it cut short are filed before the spool and the dedupe store close
      await runner?.settled(config.delivery.shutdownTimeoutMs);
      await dedupe.close();
      await fleet.close();
      spool.close();
      await unlock();
      if (health) {
        health.closeAllConnections();
        await new Promise<void>(done => health.close(() => done()));
      }
      log.info('mailbridge stopped');
    })();
    return closed;
  };
  const reloadTls = (): boolean => {
    let tls;
    try {
      tls = loadServerTls(config.smtp.tls);
    } catch (err) {
      log.error(
        'TLS certificate not reloaded; the one in use stays',
        errorFields(err),
      );
      return false;
    }
    if (!tls) return false;
    smtp.updateSecureContext({ key: tls.key, cert: tls.cert });
    // with its pid: in a cluster every worker says it for itself
    log.info('TLS certificate reloaded', {
      cert: config.smtp.tls.cert,
      pid: process.pid,
    });
    return true;
  };
  return {
    smtpPort,
    httpPort,
    dryRun,
    metrics,
    spool,
    runner,
    reloadTls,
    // a cluster worker leaves the route warning to its primary, as at start
    reload: load =>
      reloadConfig(
        {
          live,
          log,
          smtp,
          reloadTls,
          setToken: token => sink.setToken?.(token),
          warnRoutes: options.recover !== false,
        },
        load,
      ),
    close,
  };
}

/** The start line of dry-run (contract: one warn at start, and one per message). */
export const DRY_RUN_START =
  'DRY-RUN: no api.token, so mail is accepted and NOTHING IS POSTED; bodies are only written to disk';

/**
 * What an operator must not miss at start, said once per daemon (a cluster's primary says it
 * for its workers): dry-run, and a route table that refuses postmaster.
 */
export function logStartWarnings(
  config: Config,
  log: Logger,
  dryRun: boolean,
  spoolDir: string,
): void {
  if (dryRun) {
    log.warn(DRY_RUN_START, { dryRunDir: join(spoolDir, 'dry-run') });
  }
  warnIfNoPostmaster(config.routes, log);
}

/** Mends the spool after an unclean stop (see Spool.recover) and logs what it found. */
export async function recoverSpool(
  spool: Spool,
  log: Logger,
  now: number,
): Promise<void> {
  const damaged: string[] = [];
  const report = await spool.recover(now, damaged);
  const mended =
    report.removedTmp + report.requeued + report.orphans + report.missingRaw;
  if (mended) log.warn('spool recovered after an unclean stop', { ...report });
  logDamaged(log, damaged);
}

/**
 * A journal segment with unreadable bytes before whole records is damage (a crash only ever
 * cuts an append short at the end): its readable messages were requeued, and it is kept for
 * the operator, since a done mark lost in it may bring a delivered message back.
 */
function logDamaged(log: Logger, damaged: string[]): void {
  for (const path of damaged) {
    log.error(
      'journal segment damaged: its readable messages were requeued, the file kept',
      { path },
    );
  }
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
