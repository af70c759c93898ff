// Cluster mode: a primary (spool recovery, health/metrics, signals, restarts) and N workers,
// each a whole daemon (SMTP on the shared port, delivery from the shared spool).
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { AggregatorRegistry } from 'prom-client';
import { maskUrl } from '../config/mask-secrets.js';
import type { Environment } from '../config/environment.js';
import type { Config } from '../config/schema.js';
import { isDryRun } from '../config/dry-run.js';
import { logStartWarnings, recoverSpool, startDaemon } from './daemon.js';
import { startHealthServer } from '../observability/health-server.js';
import { buildStatus } from '../observability/status.js';
import { errorFields, type Logger } from '../observability/logger.js';
import { clientLimits } from '../smtp/create-smtp-server.js';
import {
  isLimiterRequest,
  PrimaryLimiter,
  WorkerLimiter,
  type LimiterRequest,
} from '../smtp/shared-limiter.js';
import { Spool } from '../spool/spool.js';
import { lockSpool } from '../spool/spool-lock.js';
import { spoolProblem } from '../spool/usable.js';
import { onReload } from './signals.js';
import { notifyReady } from './notify-ready.js';
import { reloadConfig } from './reload.js';
import { LiveConfig } from '../config/live-config.js';
import { startFleet } from './fleet.js';

/** Messages a worker sends its primary (and the limiter's: shared-limiter.ts). */
type WorkerMessage =
  | { type: 'ready'; smtpPort: number }
  | { type: 'paused'; reason: string | null }
  | LimiterRequest;

/** A worker that dies this soon after its start is restarted only after a pause. */
const RESTART_DELAY_MS = 1000;

/** How many workers the configuration asks for (0: one per core). */
export function workerCount(config: Config): number {
  return config.cluster.workers === 0
    ? availableParallelism()
    : config.cluster.workers;
}

/**
 * The primary: mends the spool once, forks the workers, serves health and summed metrics, and
 * on `signalled` asks every worker to close and waits for them. Resolves to the exit status.
 */
export async function runPrimary(
  config: Config,
  log: Logger,
  signalled: Promise<NodeJS.Signals>,
  environment: Environment,
  load: () => Config = () => config,
): Promise<number> {
  const spool = await new Spool(resolve(config.spool.dir)).init();
  const unlock = await lockSpool(spool.dir);
  await recoverSpool(spool, log, Date.now());
  const count = workerCount(config);
  const workers = new Map<
    number,
    { ready: boolean; paused: string | null; reload?: boolean }
  >();
  let closing = false;
  let smtpPort = 0;
  let allReady: () => void = () => undefined;
  const ready = new Promise<void>(done => (allReady = done));

  // state.redis.url: the workers share dedupe and limits themselves; the primary publishes the
  // spool's counts for the fleet view
  const fleet = await startFleet(config, log);
  const fleetCounts = async (): Promise<Record<string, number>> => {
    const counts: Record<string, number> = {};
    for (const state of ['queue', 'dead', 'held'] as const) {
      counts[state] = (await spool.ids(state)).length;
    }
    return counts;
  };
  // the per-client limits hold for the whole daemon: the workers' sessions are counted here,
  // under the limits of the last reload
  const live = new LiveConfig(config);
  const limiter = new PrimaryLimiter(clientLimits(live.view));
  // each worker has a slot, and its claims their own folder; a replacement takes over the slot
  const slots = new Map<number, number>();
  const fork = (slot: number): void => {
    const worker = cluster.fork({ MAILBRIDGE_WORKER_SLOT: String(slot) });
    // a send to a worker that is just dying: its 'exit' handler decides what happens next
    worker.on('error', err =>
      log.warn('worker channel error', errorFields(err)),
    );
    slots.set(worker.id, slot);
    workers.set(worker.id, { ready: false, paused: null });
    worker.on('message', (message: WorkerMessage) => {
      if (isLimiterRequest(message)) {
        // 'exit' may come before the channel's last messages: a gone worker counts nothing
        if (!workers.has(worker.id)) return;
        const answer = limiter.handle(worker.id, message);
        if (answer && worker.isConnected()) worker.send(answer);
        return;
      }
      const state = workers.get(worker.id);
      if (!state) return;
      if (message.type === 'ready') {
        state.ready = true;
        if (state.reload) {
          state.reload = false;
          worker.process.kill('SIGHUP');
        }
        smtpPort = message.smtpPort;
        if ([...workers.values()].filter(w => w.ready).length >= count) {
          allReady();
        }
      } else if (message.type === 'paused') {
        state.paused = message.reason;
      }
    });
  };
  // SIGHUP: the primary reloads its own part (the shared per-client limits, its log level), and
  // every worker its configuration and TLS files; one still starting is told once it is ready
  // (before, the signal could end it, and a worker that dies starting stops the cluster)
  onReload(() => {
    reloadConfig({ live, log, warnRoutes: true }, load);
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (!worker) continue;
      const state = workers.get(worker.id);
      if (state?.ready) worker.process.kill('SIGHUP');
      else if (state) state.reload = true;
    }
  });
  // a worker that dies before it ever listened (port taken, bad spool) would only die again
  let failStart: (reason: string) => void = () => undefined;
  const startFailed = new Promise<string>(done => (failStart = done));
  cluster.on('exit', (worker: Worker, code, signal) => {
    const wasReady = workers.get(worker.id)?.ready ?? false;
    workers.delete(worker.id);
    // its sessions ended with it
    limiter.workerGone(worker.id);
    if (closing) return;
    if (!wasReady) {
      failStart(`a worker exited with code ${code} before it was ready`);
      return;
    }
    log.error('worker died; starting another', {
      pid: worker.process.pid,
      code,
      signal,
    });
    const slot = slots.get(worker.id) ?? 0;
    setTimeout(() => closing || fork(slot), RESTART_DELAY_MS).unref();
  });
  for (let slot = 1; slot <= count; slot++) fork(slot);

  const aggregator = new AggregatorRegistry();
  const notReadyReason = async (): Promise<string | null> => {
    if (closing) return 'shutting down';
    const ready = [...workers.values()].filter(w => w.ready).length;
    return ready < count ? 'workers starting' : spoolProblem(spool);
  };
  const health = config.http.enabled
    ? await startHealthServer({
        host: config.http.host,
        port: config.http.port,
        metrics: {
          metrics: () => aggregator.clusterMetrics(),
          contentType: aggregator.contentType,
        },
        onError: err => log.error('health listener error', errorFields(err)),
        notReadyReason,
        // a worker's paused delivery still takes mail: shown here, not by /readyz
        status: () =>
          buildStatus({
            mode: config.delivery.mode,
            notReadyReason,
            pausedReason: () =>
              [...workers.values()].find(w => w.paused)?.paused ?? null,
            spool: fleetCounts,
            fleet: () => fleet.view(),
          }),
      })
    : undefined;

  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    signalled.then(() => 'signal' as const),
    startFailed,
  ]);
  if (outcome !== 'ready' && outcome !== 'signal') {
    log.error('mailbridge failed to start', { error: outcome });
    closing = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    health?.server.close();
    await fleet.close();
    await unlock();
    return 1;
  }
  if (outcome === 'ready') {
    await fleet.publish(fleetCounts, smtpPort);
    const dryRun = isDryRun(config, environment.nodeEnv);
    logStartWarnings(config, log, dryRun, spool.dir);
    log.info('mailbridge started', {
      smtp: `${config.smtp.host}:${smtpPort}`,
      http: health ? `${config.http.host}:${health.port}` : 'off',
      mode: config.delivery.mode,
      workers: count,
      dryRun,
      spool: spool.dir,
      api: dryRun ? null : maskUrl(config.api.url),
    });
    void notifyReady(environment, log);
  }
  // a replacement worker that cannot start either: stop, and let the supervisor see exit 1
  const stop = await Promise.race([
    signalled.then(signal => ({ signal, failed: undefined })),
    startFailed.then(failed => ({ signal: undefined, failed })),
  ]);
  if (stop.failed) {
    log.error('a worker could not start again', { error: stop.failed });
  } else log.info('signal received', { signal: stop.signal });
  closing = true;
  log.info('mailbridge stopping');
  const exited = Object.values(cluster.workers ?? {}).map(worker =>
    worker && !worker.isDead()
      ? new Promise<void>(done => {
          worker.once('exit', () => done());
          worker.send({ type: 'shutdown' });
        })
      : Promise.resolve(),
  );
  await Promise.all(exited);
  if (health) {
    health.server.closeAllConnections();
    await new Promise<void>(done => health.server.close(() => done()));
  }
  await fleet.close();
  await unlock();
  log.info('mailbridge stopped');
  return stop.failed ? 1 : 0;
}

/**
 * A worker: the whole daemon but for spool recovery and the health listener. It closes on the
 * primary's word, on SIGTERM/SIGINT, and when the primary is gone.
 */
export async function runWorker(
  config: Config,
  log: Logger,
  signalled: Promise<NodeJS.Signals>,
  environment: Environment,
  load: () => Config = () => config,
): Promise<number> {
  const send = (message: WorkerMessage) => process.send?.(message);
  const slot = Number(
    process.env.MAILBRIDGE_WORKER_SLOT ?? cluster.worker?.id ?? 0,
  );
  const daemon = await startDaemon(config, log, {
    environment,
    recover: false,
    claimDir: `active-${slot}`,
    limiter: new WorkerLimiter({
      send: (message, done) => process.send?.(message, undefined, {}, done),
      on: (event, listener) => process.on(event, listener),
    }),
    http: false,
    startedMessage: 'worker started',
    onPauseChange: reason => send({ type: 'paused', reason }),
  });
  // constructing one installs prom-client's answer to the primary's metrics requests
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([daemon.metrics.registry]);
  send({ type: 'ready', smtpPort: daemon.smtpPort });
  onReload(() => daemon.reload(load));
  const told = new Promise<string>(done => {
    process.on('message', (message: { type?: string }) => {
      if (message?.type === 'shutdown') done('shutdown');
    });
    process.once('disconnect', () => done('primary gone'));
  });
  const why = await Promise.race([told, signalled]);
  if (why === 'primary gone') {
    log.error('primary process gone; worker stopping');
    // a new primary may be recovering our claim folder already: nothing more is accepted into
    // it (a session finishing its DATA hears 451), so no message is answered 250 in a segment
    // or file that recovery has already put back; what we hold is still delivered
    daemon.spool.stopAccepting();
  }
  await daemon
    .close()
    .catch(err => log.error('worker close failed', errorFields(err)));
  return 0;
}
