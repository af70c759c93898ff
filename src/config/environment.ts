// What the environment says beyond the configuration's keys: NODE_ENV and whether a proxy is named.

/** Read with the configuration, from the same environment (see loadConfigAndEnvironment). */
export interface Environment {
  /** NODE_ENV: without a token, 'production' posts (and fails) where others write dry-run files */
  readonly nodeEnv?: string;
  /**
   * Whether the environment names an HTTP proxy (axios then uses it, minding NO_PROXY). False:
   * the API client tells axios not to look for one on every request. Unknown: axios looks.
   */
  readonly proxyConfigured?: boolean;
  /** NOTIFY_SOCKET: systemd started the daemon with Type=notify and waits for its ready signal */
  readonly notifySocket?: string;
}

/** The facts of `env` the daemon acts on. */
export function readEnvironment(env: NodeJS.ProcessEnv): Environment {
  return {
    nodeEnv: env.NODE_ENV,
    proxyConfigured: proxyConfigured(env),
    notifySocket: env.NOTIFY_SOCKET || undefined,
  };
}

/** The variables axios (through proxy-from-env) takes a proxy from. */
const PROXY_VARIABLES = [
  'http_proxy',
  'https_proxy',
  'all_proxy',
  'npm_config_proxy',
  'npm_config_http_proxy',
  'npm_config_https_proxy',
];

/** Whether the environment names an HTTP proxy (axios then uses it, minding NO_PROXY). */
export function proxyConfigured(env: NodeJS.ProcessEnv): boolean {
  return PROXY_VARIABLES.some(name =>
    Boolean(env[name] || env[name.toUpperCase()]),
  );
}
