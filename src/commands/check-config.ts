// `check-config`: the configuration is valid (else the CLI already exited 2); print it masked.
import type { Config } from '../config/schema.js';
import { maskSecrets } from '../config/mask-secrets.js';
import { isDryRun } from '../daemon.js';

/** Prints the effective configuration as JSON (valid YAML too), secrets masked. */
export function runCheckConfig(config: Config): number {
  process.stdout.write(`${JSON.stringify(maskSecrets(config), null, 2)}\n`);
  process.stderr.write(
    `configuration is valid${isDryRun(config) ? ' (dry-run: no api.token)' : ''}\n`,
  );
  return 0;
}
