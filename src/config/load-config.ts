// Layered configuration: default.yaml, $NODE_ENV.yaml, local.yaml, --config file, MAILBRIDGE_* variables.
import type { z } from 'zod';
import { ConfigError } from '../errors/bridge-error.js';
import {
  configLayers,
  readConfigFile,
  type ConfigFileOptions,
} from './config-files.js';
import { envTree, readSecretFile, type EnvKey } from './env-variables.js';
import { readEnvironment, type Environment } from './environment.js';
import { configSchema, type Config } from './schema.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Tree = { [key: string]: Json };

/**
 * Environment variables of the contract, with the key each sets and its type. Each may also be
 * given as `<NAME>_FILE` (env-variables.ts): a secret mounted as a file.
 */
const ENV_KEYS: readonly EnvKey[] = [
  ['MAILBRIDGE_API_URL', 'api.url', 'string'],
  ['MAILBRIDGE_API_TOKEN', 'api.token', 'string'],
  ['MAILBRIDGE_SMTP_HOST', 'smtp.host', 'string'],
  ['MAILBRIDGE_SMTP_PORT', 'smtp.port', 'number'],
  ['MAILBRIDGE_SMTP_TLS_KEY', 'smtp.tls.key', 'string'],
  ['MAILBRIDGE_SMTP_TLS_CERT', 'smtp.tls.cert', 'string'],
  ['MAILBRIDGE_HTTP_HOST', 'http.host', 'string'],
  ['MAILBRIDGE_HTTP_PORT', 'http.port', 'number'],
  ['MAILBRIDGE_SPOOL_DIR', 'spool.dir', 'string'],
  ['MAILBRIDGE_DELIVERY_MODE', 'delivery.mode', 'string'],
  ['MAILBRIDGE_LOG_LEVEL', 'log.level', 'string'],
  ['MAILBRIDGE_LOG_FORMAT', 'log.format', 'string'],
  ['MAILBRIDGE_CLUSTER_WORKERS', 'cluster.workers', 'number'],
  // a secret: its password is masked by check-config (mask-secrets.ts)
  ['MAILBRIDGE_REDIS_URL', 'state.redis.url', 'string'],
];

export interface LoadConfigOptions extends ConfigFileOptions {
  /** The environment to read NODE_ENV and MAILBRIDGE_* from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Applied last, after the environment (tests and embedding). */
  overrides?: Tree;
}

/**
 * Loads, merges and validates the configuration. Throws one ConfigError that lists every problem
 * found, one line each, naming its key (or file, or variable): the operator fixes them all at once.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const nodeEnv = env.NODE_ENV;
  const problems: string[] = [];
  let tree: Tree = {};
  for (const layer of configLayers(options, env)) {
    try {
      tree = deepMerge(tree, readConfigFile(layer) as Tree);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  // a layer that could not be read leaves a tree the operator did not write: validating it
  // would only add noise to the problems already found
  if (problems.length) throw configError(problems);
  // a variable that cannot be used is left out, and the rest is still checked
  tree = deepMerge(tree, envTree(env, ENV_KEYS, problems) as Tree);
  if (options.overrides) tree = deepMerge(tree, options.overrides);
  readPasswordFiles(tree, problems);

  const result = configSchema.safeParse(tree);
  if (!result.success) {
    throw configError([
      ...problems,
      ...result.error.issues.flatMap(describeIssue),
    ]);
  }
  if (nodeEnv === 'production') {
    problems.push(...productionProblems(result.data));
  }
  if (problems.length) throw configError(problems);
  return deepFreeze(result.data);
}

/** The configuration, and what the same environment says beyond its keys. */
export interface LoadedConfig {
  config: Config;
  environment: Environment;
}

/** loadConfig, with the environment's NODE_ENV and proxy variables read from the same `env`. */
export function loadConfigAndEnvironment(
  options: LoadConfigOptions = {},
): LoadedConfig {
  const env = options.env ?? process.env;
  return {
    config: loadConfig({ ...options, env }),
    environment: readEnvironment(env),
  };
}

/** Validates a merged tree; every problem becomes a line of one ConfigError. */
export function validate(tree: unknown): Config {
  const result = configSchema.safeParse(tree);
  if (result.success) return deepFreeze(result.data);
  throw configError(result.error.issues.flatMap(describeIssue));
}

/**
 * One ConfigError whose message holds a line per wrong key: the first problem found for a key
 * (an unreadable MAILBRIDGE_API_TOKEN_FILE, not also "api.token: required" after it).
 */
function configError(problems: string[]): ConfigError {
  const byKey = new Map<string, string>();
  for (const problem of problems) {
    const key = problem.slice(0, problem.indexOf(': '));
    if (!byKey.has(key)) byKey.set(key, problem);
  }
  return new ConfigError(
    [...byKey.values()].join('\n') || 'configuration: invalid',
  );
}

/** The problems a ConfigError lists, one per line (the CLI prefixes each). */
export function configProblems(err: ConfigError): string[] {
  return err.message.split('\n');
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map(
      key => `${[path, key].filter(Boolean).join('.')}: unknown key`,
    );
  }
  return [`${path || 'configuration'}: ${issue.message}`];
}

/** What production refuses: no token, no routes, a "*" route without catchAll. */
function productionProblems(config: Config): string[] {
  const problems: string[] = [];
  if (!config.api.token) {
    problems.push(
      'api.token: required when NODE_ENV=production (set MAILBRIDGE_API_TOKEN or MAILBRIDGE_API_TOKEN_FILE)',
    );
  }
  if (config.routes.length === 0) {
    problems.push(
      'routes: at least one route is required when NODE_ENV=production',
    );
  }
  // "*" takes mail for every domain: in production only when the operator says so
  const star = config.routes.findIndex(
    route => route.match === '*' && !route.catchAll,
  );
  if (star >= 0) {
    problems.push(
      `routes.${star}.catchAll: must be true for a "*" route when NODE_ENV=production ` +
        '(it takes mail for any domain)',
    );
  }
  return problems;
}

/**
 * `passwordFile` beside an AUTH account's `password`: the password read from that file (a
 * mounted secret, as `<NAME>_FILE` for the variables), then the key is gone before validation.
 */
function readPasswordFiles(tree: Tree, problems: string[]): void {
  const smtp = tree.smtp;
  const auth = isTree(smtp) ? smtp.auth : undefined;
  const users = isTree(auth) ? auth.users : undefined;
  if (!isTree(smtp) || !isTree(auth) || !Array.isArray(users)) return;
  const read = users.map((user, index): Json => {
    if (!isTree(user) || user.passwordFile === undefined) return user;
    // named as the password's problem (with the file's), which the key's one line then is
    const key = `smtp.auth.users.${index}.password`;
    const { passwordFile, ...rest } = user;
    if (typeof passwordFile !== 'string' || passwordFile === '') {
      problems.push(`${key}: passwordFile must name a file`);
      return rest;
    }
    if (rest.password !== undefined && rest.password !== null) {
      problems.push(`${key}: give password or passwordFile, not both`);
      return rest;
    }
    const password = readSecretFile(passwordFile, problem =>
      problems.push(`${key}: passwordFile ${passwordFile} ${problem}`),
    );
    return password === undefined ? rest : { ...rest, password };
  });
  // a copy: the layers' own objects (a caller's overrides) stay as they were
  tree.smtp = { ...smtp, auth: { ...auth, users: read } };
}

/** Objects merge key by key; arrays and scalars are replaced by the later layer. */
function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isTree(prev) && isTree(value) ? deepMerge(prev, value) : value;
  }
  return out;
}

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
