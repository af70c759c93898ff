// The configuration's files: which layers there are, in order, and how one is read. Shared by
// the whole configuration (load-config.ts) and the queue commands' spool.dir (spool-only.ts).
import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors/bridge-error.js';
import { isMapping } from './tree.js';

/** The `config/` folder shipped with the package (two levels above src/config and dist/config). */
export const PACKAGE_CONFIG_DIR = fileURLToPath(
  new URL('../../config/', import.meta.url),
);

/** Where to look for the files: loadConfig's and loadSpoolDir's options. */
export interface ConfigFileOptions {
  /** Folder holding default.yaml and friends; defaults to MAILBRIDGE_CONFIG_DIR or the package's. */
  configDir?: string;
  /** The `--config` file; defaults to MAILBRIDGE_CONFIG. */
  file?: string;
}

/** One file of the configuration, and whether its absence is an error. */
export interface ConfigLayer {
  path: string;
  required: boolean;
}

/** default.yaml, $NODE_ENV.yaml, local.yaml, then the --config file: later wins. */
export function configLayers(
  options: ConfigFileOptions,
  env: NodeJS.ProcessEnv,
): ConfigLayer[] {
  const dir =
    options.configDir ?? env.MAILBRIDGE_CONFIG_DIR ?? PACKAGE_CONFIG_DIR;
  const file = options.file ?? (env.MAILBRIDGE_CONFIG || undefined);
  return [
    { path: resolve(dir, 'default.yaml'), required: true },
    ...(env.NODE_ENV
      ? [{ path: resolve(dir, `${env.NODE_ENV}.yaml`), required: false }]
      : []),
    { path: resolve(dir, 'local.yaml'), required: false },
    ...(file ? [{ path: resolve(file), required: true }] : []),
  ];
}

/**
 * One layer's keys: {} for an empty file or an optional one that is absent; a ConfigError (its
 * path and the first line of the reason) for a required one absent, an unreadable or malformed
 * one, or one that holds something else than a mapping.
 */
export function readConfigFile({
  path,
  required,
}: ConfigLayer): Record<string, unknown> {
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
  if (!isMapping(parsed)) {
    throw new ConfigError(`${path}: must hold a mapping of keys`);
  }
  return parsed;
}
