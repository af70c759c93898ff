// The one key the `queue` commands need, spool.dir, read from the same layers as the whole
// configuration, with nothing else validated: no token, no routes, no production checks.
import { resolve } from 'node:path';
import { ConfigError } from '../errors/bridge-error.js';
import {
  configLayers,
  readConfigFile,
  type ConfigFileOptions,
} from './config-files.js';
import { isMapping } from './tree.js';

/** Where to look; the same meaning as loadConfig's options. */
export interface SpoolDirOptions extends ConfigFileOptions {
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
  let spoolDir: unknown;
  let from = 'configuration';
  for (const layer of configLayers(options, env)) {
    const found = spoolDirIn(readConfigFile(layer), layer.path);
    if (found !== undefined) {
      spoolDir = found;
      from = layer.path;
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
