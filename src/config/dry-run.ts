// Dry-run: when bodies are written to disk instead of posted, and where that is refused.
import type { Config } from './schema.js';
import { ConfigError } from '../errors/bridge-error.js';
import { allowedNetworks } from './networks.js';

/** The addresses a listener may have for dry-run: only this machine can reach it there. */
const isLoopbackAddress = allowedNetworks(['127.0.0.0/8', '::1']);

/** True when bodies are written to disk instead of posted: no token, not production. */
export function isDryRun(config: Config, nodeEnv: string | undefined): boolean {
  return !config.api.token && nodeEnv !== 'production';
}

/** Whether `host` (smtp.host) is a loopback address, or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const name = host.trim().toLowerCase();
  return name === 'localhost' || isLoopbackAddress(name);
}

/**
 * Refuses dry-run on a listener other machines can reach: a token left out (or its variable
 * misspelt) would otherwise make a daemon that answers 250 to the world and posts nothing.
 */
export function assertDryRunOnLoopback(
  config: Config,
  nodeEnv: string | undefined,
): void {
  if (!isDryRun(config, nodeEnv) || isLoopbackHost(config.smtp.host)) return;
  throw new ConfigError(
    `api.token: required when smtp.host (${config.smtp.host}) is not a loopback address; ` +
      'without it mail would be accepted and never posted (set MAILBRIDGE_API_TOKEN)',
  );
}
