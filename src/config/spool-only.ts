// The one key the `queue` commands need, spool.dir, read from the same layers as the whole
// configuration, with nothing else validated: no token, no routes, no production checks.
import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors/bridge-error.js';
import { PACKAGE_CONFIG_DIR } from './load-config.js';
import { isMapping } from './tree.js';

/** Where to look; the same meaning as loadConfig's options. */
export interface SpoolDirOptions {
  /** Folder holding default.yaml and friends; defaults to MAILBRIDGE_CONFIG_DIR or the package's. */
  configDir?: string;
  /** The `--config` file; defaults to MAILBRIDGE_CONFIG. */
  file?: string;
  /** The environment to read NODE_ENV, MAILBRIDGE_CONFIG and MAILBRIDGE_SPOOL_DIR from. */
  env?: NodeJS.ProcessEnv;
}

/**
 * spool.dir as an absolute path (relative ones from the working folder, as the daemon takes
 * them): default.yaml, $NODE_ENV.yaml, local.yaml, the --config file, then MAILBRIDGE_SPOOL_DIR,
 * later wins. An operator with a broken API section or no token can still read the queue;
 * a layer that cannot be read, or a spool.dir that is not a non-empty string, is a ConfigError.
 */
export function loadSpoolDir(options: SpoolDirOptions = {}): string {
  const env = options.env ?? process.env;
  const dir =
    options.configDir ?? env.MAILBRIDGE_CONFIG_DIR ?? PACKAGE_CONFIG_DIR;
  const file = options.file ?? (env.MAILBRIDGE_CONFIG || undefined);
  const layers: Array<[string, boolean]> = [
    [resolve(dir, 'default.yaml'), true],
    ...(env.NODE_ENV
      ? [[resolve(dir, `${env.NODE_ENV}.yaml`), false] as [string, boolean]]
      : []),
    [resolve(dir, 'local.yaml'), false],
    ...(file ? [[resolve(file), true] as [string, boolean]] : []),
  ];
  let spoolDir: unknown;
  let from = 'configuration';
  for (const [path, required] of layers) {
    const found = spoolDirIn(readLayer(path, required), path);
    if (found !== undefined) {
      spoolDir = found;
      from = path;
    }
  }
  if (env.MAILBRIDGE_SPOOL_DIR) {
    spoolDir = env.MAILBRIDGE_SPOOL_DIR;
    from = 'MAILBRIDGE_SPOOL_DIR';
  }
  if (typeof spoolDir !== 'string' || spoolDir === '') {
    throw new ConfigError(`spool.dir: must be a non-empty string (${from})`);
  }
  return resolve(spoolDir);
}

/** The value of spool.dir in one layer's tree; undefined when the layer does not set it. */
function spoolDirIn(tree: unknown, path: string): unknown {
  if (!isMapping(tree) || !('spool' in tree)) return undefined;
  const spool = tree.spool;
  if (spool == null) return undefined;
  if (!isMapping(spool)) {
    throw new ConfigError(`spool: must be a mapping with dir (${path})`);
  }
  return spool.dir ?? undefined;
}

function readLayer(path: string, required: boolean): unknown {
  if (!existsSync(path)) {
    if (required) {
      throw new ConfigError(`${path}: configuration file not found`);
    }
    return undefined;
  }
  try {
    const text = readFileSync(path, 'utf8');
    const ext = extname(path).toLowerCase();
    if (ext === '.json') return JSON.parse(text) as unknown;
    if (ext === '.yaml' || ext === '.yml') return parseYaml(text) as unknown;
    throw new Error('must end in .yaml, .yml or .json');
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message.split('\n')[0]}`);
  }
}
