// What a reload changes: the keys that differ, which of them apply to the running daemon, and
// the configuration put in force (the others keep their running values until a restart).
import type { Config } from './schema.js';
import { isMapping, setAt, valueAt } from './tree.js';

/**
 * The keys a running daemon takes on SIGHUP: each is read where it is used, from the live view
 * (live-config.ts), or applied by app/reload.ts. A key or prefix not listed here needs a
 * restart: it is built into something at start (the listeners, the spool, the API client and
 * its post thread, the DNS resolver, the retry schedule). New keys are restart keys until
 * someone makes them live and adds them here.
 */
export const LIVE_KEYS: readonly string[] = [
  'routes',
  'log.level',
  'smtp.maxMessageSize',
  'smtp.maxRecipients',
  'smtp.maxClients',
  'smtp.greetingDelayMs',
  'smtp.socketTimeoutMs',
  'smtp.commandTimeoutMs',
  'smtp.dataTimeoutMs',
  'smtp.dataMinRate',
  'smtp.sessionTimeoutMs',
  'smtp.closeTimeoutMs',
  'smtp.inFlowDelayMs',
  'smtp.allowedNetworks',
  'smtp.maxConnectionsPerClient',
  'smtp.connectionRatePerClient',
  // other files at the same place are read on every SIGHUP anyway; these, while TLS stays on
  'smtp.tls.key',
  'smtp.tls.cert',
  'smtp.tls.required',
  'smtp.auth',
  // a rotated token (not one set or removed: that turns dry-run on or off)
  'api.token',
  'delivery.syncTimeoutMs',
  'delivery.shutdownTimeoutMs',
];

/** What a reload would do: the configuration to put in force and the keys behind it. */
export interface ReloadPlan {
  /** the new configuration, less the changes that need a restart (their running values kept) */
  config: unknown;
  /** changed keys that take effect now */
  applied: string[];
  /** changed keys whose running value stays until a restart */
  needsRestart: string[];
}

/** Splits the changes from `running` to `next` into those applied now and those that wait. */
export function planReload(running: Config, next: Config): ReloadPlan {
  const applied: string[] = [];
  const needsRestart: string[] = [];
  // turning TLS on or off changes the listener's commands (STARTTLS), not just its files
  const tlsOnOff =
    (running.smtp.tls.key === null) !== (next.smtp.tls.key === null);
  const tokenOnOff = (running.api.token === null) !== (next.api.token === null);
  for (const key of changedKeys(running, next)) {
    const live =
      LIVE_KEYS.some(k => key === k || key.startsWith(`${k}.`)) &&
      !(tlsOnOff && /^smtp\.tls\.(key|cert)$/.test(key)) &&
      !(tokenOnOff && key === 'api.token');
    (live ? applied : needsRestart).push(key);
  }
  const config = structuredClone(next) as unknown as Record<string, unknown>;
  for (const key of needsRestart) {
    setAt(config, key.split('.'), valueAt(running, key.split('.')));
  }
  return { config, applied, needsRestart };
}

/**
 * The keys whose values differ, as dotted paths down to the first value that is not a mapping
 * (a list, such as `routes` or `smtp.allowedNetworks`, is one key).
 */
export function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (isMapping(a) && isMapping(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap(key =>
      changedKeys(a[key], b[key], prefix ? `${prefix}.${key}` : key),
    );
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}
