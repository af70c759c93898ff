// Layered configuration: default.yaml, $NODE_ENV.yaml, local.yaml, --config file, MAILBRIDGE_* variables.
import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors/bridge-error.js';
import { readEnvironment, type Environment } from './environment.js';
import { configSchema, type Config } from './schema.js';

/** The `config/` folder shipped with the package (two levels above src/config and dist/config). */
export const PACKAGE_CONFIG_DIR = fileURLToPath(
  new URL('../../config/', import.meta.url),
);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Tree = { [key: string]: Json };

/** Environment variables of the contract, with the key each sets and its type. */
const ENV_KEYS: ReadonlyArray<[string, string, 'string' | 'number']> = [
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

export interface LoadConfigOptions {
  /** Folder holding default.yaml and friends; defaults to MAILBRIDGE_CONFIG_DIR or the package's. */
  configDir?: string;
  /** The `--config` file; defaults to MAILBRIDGE_CONFIG. */
  file?: string;
  /** The environment to read NODE_ENV and MAILBRIDGE_* from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Applied last, after the environment (tests and embedding). */
  overrides?: Tree;
}

/** Loads, merges and validates the configuration; throws ConfigError naming the bad key. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const dir =
    options.configDir ?? env.MAILBRIDGE_CONFIG_DIR ?? PACKAGE_CONFIG_DIR;
  const nodeEnv = env.NODE_ENV;
  const file = options.file ?? (env.MAILBRIDGE_CONFIG || undefined);

  let tree = readConfigFile(resolve(dir, 'default.yaml'), true);
  const layers = [
    nodeEnv ? resolve(dir, `${nodeEnv}.yaml`) : undefined,
    resolve(dir, 'local.yaml'),
  ];
  for (const layer of layers) {
    if (layer) tree = deepMerge(tree, readConfigFile(layer, false));
  }
  if (file) tree = deepMerge(tree, readConfigFile(resolve(file), true));
  tree = deepMerge(tree, fromEnv(env));
  if (options.overrides) tree = deepMerge(tree, options.overrides);

  const config = validate(tree);
  if (nodeEnv === 'production') assertProductionReady(config);
  return config;
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

/** Validates a merged tree; the first problem becomes a one-line ConfigError. */
export function validate(tree: unknown): Config {
  const result = configSchema.safeParse(tree);
  if (result.success) return deepFreeze(result.data);
  throw new ConfigError(describeIssue(result.error.issues[0]));
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'configuration: invalid';
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = [path, issue.keys[0]].filter(Boolean).join('.');
    return `${key}: unknown key`;
  }
  return `${path || 'configuration'}: ${issue.message}`;
}

function assertProductionReady(config: Config): void {
  if (!config.api.token) {
    throw new ConfigError(
      'api.token: required when NODE_ENV=production (set MAILBRIDGE_API_TOKEN)',
    );
  }
  if (config.routes.length === 0) {
    throw new ConfigError(
      'routes: at least one route is required when NODE_ENV=production',
    );
  }
  // "*" takes mail for every domain: in production only when the operator says so
  const star = config.routes.findIndex(
    route => route.match === '*' && !route.catchAll,
  );
  if (star >= 0) {
    throw new ConfigError(
      `routes.${star}.catchAll: must be true for a "*" route when NODE_ENV=production ` +
        '(it takes mail for any domain)',
    );
  }
}

function readConfigFile(path: string, required: boolean): Tree {
  if (!existsSync(path)) {
    if (required) {
      throw new ConfigError(`${path}: configuration file not found`);
    }
    return {};
  }
  let parsed: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    const ext = extname(path).toLowerCase();
    if (ext === '.json') parsed = JSON.parse(text);
    else if (ext === '.yaml' || ext === '.yml') parsed = parseYaml(text);
    else throw new Error('must end in .yaml, .yml or .json');
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed == null) return {};
  if (!isTree(parsed)) {
    throw new ConfigError(`${path}: must hold a mapping of keys`);
  }
  return parsed;
}

function fromEnv(env: NodeJS.ProcessEnv): Tree {
  const tree: Tree = {};
  for (const [name, key, type] of ENV_KEYS) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    let value: Json = raw;
    if (type === 'number') {
      value = Number(raw);
      if (!/^\d+$/.test(raw.trim())) {
        throw new ConfigError(
          `${key}: ${name} must be a whole number, got "${raw}"`,
        );
      }
    }
    setPath(tree, key.split('.'), value);
  }
  return tree;
}

function setPath(tree: Tree, path: string[], value: Json): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    tree[head] = value;
    return;
  }
  const child = tree[head];
  const next: Tree = isTree(child) ? child : {};
  tree[head] = next;
  setPath(next, rest, value);
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
