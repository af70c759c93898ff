// `check-config`: the configuration is valid (else the CLI already exited 2); print it masked.
import type { LoadedConfig } from '../config/load-config.js';
import { maskSecrets } from '../config/mask-secrets.js';
import { isDryRun } from '../config/dry-run.js';

/** Prints the effective configuration as JSON (valid YAML too), secrets masked. */
export function runCheckConfig({ config, environment }: LoadedConfig): number {
  process.stdout.write(`${JSON.stringify(maskSecrets(config), null, 2)}\n`);
  process.stderr.write(
    `configuration is valid${isDryRun(config, environment.nodeEnv) ? ' (DRY-RUN: no api.token, nothing will be posted)' : ''}\n`,
  );
  return 0;
}
