// Secrets never leave the process in clear: check-config and logs print this masked copy.
import type { Config } from './schema.js';

const MASK = '********';

/** A copy of the configuration with every secret replaced by a mask (null stays null). */
export function maskSecrets(config: Config): Config {
  return {
    ...config,
    api: {
      ...config.api,
      url: maskUrl(config.api.url),
      token: config.api.token === null ? null : MASK,
    },
  };
}

/** A URL with the password of its user-info part (https://user:pw@host) masked. */
export function maskUrl(url: string): string {
  const parsed = new URL(url);
  if (!parsed.password) return url;
  parsed.password = MASK;
  return parsed.toString();
}
