// `serve`: run the daemon (one process, or a cluster) until SIGTERM or SIGINT, then exit 0.
import cluster from 'node:cluster';
import { runPrimary, runWorker, workerCount } from '../app/cluster.js';
import type { LoadedConfig } from '../config/load-config.js';
import { startDaemon } from '../app/daemon.js';
import { createLogger, errorFields } from '../observability/logger.js';
import { listenForReload, onReload } from '../app/signals.js';

/** Runs until a signal; resolves to the exit status. */
export async function runServe({
  config,
  environment,
}: LoadedConfig): Promise<number> {
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
  });
  // After an uncaught exception the process state is unknown: log it and exit, so a supervisor
  // restarts a clean daemon. Nothing accepted is lost: 250 is only sent once the message is
  // stored (queue, hybrid) or posted (sync).
  process.on('uncaughtException', err => {
    log.error('uncaught exception, exiting', errorFields(err));
    log.on('finish', () => process.exit(1));
    log.end();
  });
  process.on('unhandledRejection', err => {
    log.error('unhandled rejection', errorFields(err));
  });
  // Listen before starting: a supervisor may signal as soon as it reads "mailbridge started",
  // and a signal without a listener kills the process instead of closing it cleanly.
  const signalled = new Promise<NodeJS.Signals>(done => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  // SIGHUP reloads the TLS certificate (below, and in cluster.ts); never Node's default, an exit
  listenForReload();
  try {
    if (workerCount(config) > 1) {
      return cluster.isPrimary
        ? await runPrimary(config, log, signalled, environment)
        : await runWorker(config, log, signalled, environment);
    }
    const daemon = await startDaemon(config, log, { environment });
    // SIGHUP: a renewed TLS certificate, read again without a restart
    onReload(() => daemon.reloadTls());
    const signal = await signalled;
    log.info('signal received', { signal });
    await daemon.close();
    return 0;
  } catch (err) {
    log.error('mailbridge failed to start', errorFields(err));
    return 1;
  }
}
