// `serve`: run the daemon until SIGTERM or SIGINT, then shut down cleanly and exit 0.
import type { Config } from '../config/schema.js';
import { startDaemon } from '../daemon.js';
import { createLogger, errorFields } from '../observability/logger.js';

/** Runs until a signal; resolves to the exit status. */
export async function runServe(config: Config): Promise<number> {
  const log = createLogger({ level: config.log.level });
  process.on('uncaughtException', err => {
    log.error('uncaught exception', errorFields(err));
  });
  process.on('unhandledRejection', err => {
    log.error('unhandled rejection', errorFields(err));
  });
  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (err) {
    log.error('mailbridge failed to start', errorFields(err));
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>(done => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  log.info('signal received', { signal });
  await daemon.close();
  return 0;
}
