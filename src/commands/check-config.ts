// `check-config`: the configuration is valid (else the CLI already exited 2); print it masked.
import type { LoadedConfig } from '../config/load-config.js';
import { maskSecrets } from '../config/mask-secrets.js';
import { isDryRun } from '../app/daemon.js';

/** Prints the effective configuration as JSON (valid YAML too), secrets masked. */
export function runCheckConfig({ config, environment }: LoadedConfig): number {
  process.stdout.write(`${JSON.stringify(maskSecrets(config), null, 2)}\n`);
  process.stderr.write(
    `configuration is valid${isDryRun(config, environment.nodeEnv) ? ' (dry-run: no api.token)' : ''}\n`,
  );
  return 0;
}
