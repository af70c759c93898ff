// Secrets never leave the process in clear: check-config and logs print this masked copy.
import type { Config } from './schema.js';

const MASK = '********';

/** A copy of the configuration with every secret replaced by a mask (null stays null). */
export function maskSecrets(config: Config): Config {
  return {
    ...config,
    api: { ...config.api, token: config.api.token === null ? null : MASK },
  };
}
