// Secrets never leave the process in clear: check-config and logs print this masked copy.
import type { Config } from './schema.js';

const MASK = '********';

/** A copy of the configuration with every secret replaced by a mask (null stays null). */
export function maskSecrets(config: Config): Config {
  return {
    ...config,
    smtp: {
      ...config.smtp,
      auth: {
        ...config.smtp.auth,
        users: config.smtp.auth.users.map(user => ({
          ...user,
          password: MASK,
        })),
      },
    },
    api: {
      ...config.api,
      url: maskUrl(config.api.url),
      token: config.api.token === null ? null : MASK,
    },
    state: {
      ...config.state,
      redis: {
        ...config.state.redis,
        url:
          config.state.redis.url === null
            ? null
            : maskUrl(config.state.redis.url),
      },
    },
  };
}

/** A URL with its credentials masked: the user-info password and secret-looking query values. */
export function maskUrl(url: string): string {
  const parsed = new URL(url);
  let masked = false;
  if (parsed.password) {
    parsed.password = MASK;
    masked = true;
  }
  // a token passed in the query string (?access_token=..., ?api_key=...) is a secret too
  for (const name of [...parsed.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) {
      parsed.searchParams.set(name, MASK);
      masked = true;
    }
  }
  return masked ? parsed.toString() : url;
}

/** Query parameter names that carry credentials. */
const SECRET_PARAM = /token|key|secret|pass|auth|sig/i;
