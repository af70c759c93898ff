// `serve`: run the daemon until SIGTERM or SIGINT, then shut down cleanly and exit 0.
import type { Config } from '../config/schema.js';
import { startDaemon } from '../daemon.js';
import { createLogger, errorFields } from '../observability/logger.js';

/** Runs until a signal; resolves to the exit status. */
export async function runServe(config: Config): Promise<number> {
  const log = createLogger({ level: config.log.level });
  // After an uncaught exception the process state is unknown: log it and exit, so a supervisor
  // restarts a clean daemon. Nothing accepted is lost: sync mode answers 250 only after the post.
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
  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (err) {
    log.error('mailbridge failed to start', errorFields(err));
    return 1;
  }
  const signal = await signalled;
  log.info('signal received', { signal });
  await daemon.close();
  return 0;
}
