// SIGHUP: the configuration read again and put in force without dropping a session; what cannot
// change in a running daemon keeps its value and is named, an invalid file changes nothing.
import type { SMTPServer } from 'smtp-server';
import { planReload } from '../config/config-changes.js';
import type { LiveConfig } from '../config/live-config.js';
import { configProblems, validate } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../errors/bridge-error.js';
import type { Logger } from '../observability/logger.js';
import { updateSmtpServer } from '../smtp/create-smtp-server.js';
import { warnIfNoPostmaster } from './route-warnings.js';

/** What a reload acts on in one process. */
export interface ReloadTarget {
  live: LiveConfig;
  /** the process's root logger: its level is the configuration's */
  log: Logger;
  /** the listener whose limits change in place (none in a cluster's primary) */
  smtp?: SMTPServer;
  /** reads the TLS files of the configuration in force (renewed certificates) */
  reloadTls?: () => boolean;
  /** puts a rotated api.token in force in the API client (absent: nothing posts here) */
  setToken?: (token: string) => void;
  /** warn of a new route table's gaps (one process of a cluster says it for all) */
  warnRoutes?: boolean;
}

/** How a reload went. */
export interface ReloadResult {
  /** false when the new configuration was refused (the running one stays) */
  reloaded: boolean;
  /** changed keys now in force */
  applied: string[];
  /** changed keys that keep their running value until a restart */
  needsRestart: string[];
}

/**
 * Loads the configuration with `load` and puts in force what a running daemon can take. A
 * configuration that does not load, or that would not be valid with the restart keys' running
 * values, is logged at `error` with every problem, and the running one stays. The TLS files are
 * read again either way: a renewed certificate does not wait for a good configuration file.
 */
export function reloadConfig(
  target: ReloadTarget,
  load: () => Config,
): ReloadResult {
  const { live, log } = target;
  let next: Config;
  let plan: ReturnType<typeof planReload>;
  try {
    plan = planReload(live.current, load());
    next = validate(plan.config);
  } catch (err) {
    log.error('configuration not reloaded; the running one stays', {
      problems:
        err instanceof ConfigError
          ? configProblems(err)
          : [(err as Error).message],
      pid: process.pid,
    });
    target.reloadTls?.();
    return { reloaded: false, applied: [], needsRestart: [] };
  }
  live.replace(next);
  log.level = next.log.level;
  if (target.smtp) updateSmtpServer(target.smtp, next.smtp);
  if (plan.applied.includes('api.token') && next.api.token !== null) {
    target.setToken?.(next.api.token);
  }
  if (plan.needsRestart.length) {
    log.warn(
      'configuration changes need a restart; their running values stay',
      {
        keys: plan.needsRestart,
        pid: process.pid,
      },
    );
  }
  // keys only: a changed secret (api.token, an AUTH password) is never written out
  log.info('configuration reloaded', {
    changed: plan.applied,
    pid: process.pid,
  });
  if (target.warnRoutes && plan.applied.includes('routes')) {
    warnIfNoPostmaster(next.routes, log);
  }
  target.reloadTls?.();
  return {
    reloaded: true,
    applied: plan.applied,
    needsRestart: plan.needsRestart,
  };
}
