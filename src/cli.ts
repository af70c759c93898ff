#!/usr/bin/env node
// The command line: serve | preview | check-config (queue and inject come with the durable spool).
import { packageVersion } from './config/package-version.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  configProblems,
  loadConfig,
  loadConfigAndEnvironment,
  type LoadedConfig,
} from './config/load-config.js';
import { assertDryRunOnLoopback } from './config/dry-run.js';
import { ConfigError } from './errors/bridge-error.js';
import { runCheckConfig } from './commands/check-config.js';
import { runInject } from './commands/inject.js';
import { runPreview } from './commands/preview.js';
import { runQueue } from './commands/queue.js';
import { runServe } from './commands/serve.js';
import { loadServerTls } from './smtp/server-tls.js';

const USAGE = `Usage: mailbridge <command> [options]

Commands:
  serve [--config FILE]                        run the daemon
  preview FILE.eml [--rcpt ADDR]... [--from ADDR] [--pretty] [--config FILE]
                                               print the JSON body per route; sends nothing
  check-config [--config FILE]                 validate and print the effective configuration
  queue list|dead|held [--json]                messages waiting / dead / held by a route's
                                               policy (ID first; dead and held: the reason)
  queue show ID                                one message's full state
  queue retry ID|--all                         make waiting messages due now
  queue replay ID                              put a dead message back in the queue; a held
                                               one too, released from its hold (posted)
  queue purge ID                               delete a waiting, dead or held message
  inject FILE.eml --rcpt ADDR [--from ADDR]    spool a message as if received by SMTP

Options:
  --config FILE   a .yaml, .yml or .json file layered over config/ (or MAILBRIDGE_CONFIG)
  -h, --help      this text
  -v, --version   the version
`;

const OPTIONS = {
  config: { type: 'string' },
  rcpt: { type: 'string', multiple: true },
  from: { type: 'string' },
  pretty: { type: 'boolean' },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} satisfies ParseArgsConfig['options'];

/** Runs one command; resolves to the exit status (0 ok, 2 usage or configuration, 1 other). */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const file = values.config;
  try {
    switch (command) {
      case 'serve':
        if (rest.length) return usageError('serve takes no arguments');
        // A served daemon may leave keep-alive handles behind: exit once it has closed.
        process.exit(
          await runServe(loadChecked(file), () => loadChecked(file).config),
        );
        break;
      case 'check-config':
        if (rest.length) return usageError('check-config takes no arguments');
        return runCheckConfig(loadChecked(file));
      case 'preview': {
        if (rest.length !== 1 || !rest[0]) {
          return usageError('preview needs one FILE.eml');
        }
        return await runPreview(loadConfig({ file }), {
          file: rest[0],
          rcpt: values.rcpt ?? [],
          from: values.from,
          pretty: values.pretty === true,
        });
      }
      case 'queue': {
        const [action, id, ...extra] = rest;
        if (!action || extra.length) {
          return usageError('queue needs an action and at most one ID');
        }
        return await runQueue(loadConfig({ file }), {
          action,
          id,
          all: values.all === true,
          json: values.json === true,
        });
      }
      case 'inject':
        if (rest.length !== 1 || !rest[0]) {
          return usageError('inject needs one FILE.eml');
        }
        return await runInject(loadConfig({ file }), {
          file: rest[0],
          rcpt: values.rcpt ?? [],
          from: values.from,
        });
      case undefined:
        return usageError('a command is required');
      default:
        return usageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      // every problem at once, one line each, so that one edit fixes them all
      for (const problem of configProblems(err)) {
        process.stderr.write(`mailbridge: invalid configuration: ${problem}\n`);
      }
      return 2;
    }
    process.stderr.write(
      `mailbridge: ${(err as Error).message ?? String(err)}\n`,
    );
    return 1;
  }
}

/**
 * The configuration `serve` would run on, with the files it names (TLS) read once to check
 * them, and dry-run only on loopback.
 */
function loadChecked(file: string | undefined): LoadedConfig {
  const loaded = loadConfigAndEnvironment({ file });
  assertDryRunOnLoopback(loaded.config, loaded.environment.nodeEnv);
  loadServerTls(loaded.config.smtp.tls);
  return loaded;
}

function usageError(message: string): number {
  process.stderr.write(`mailbridge: ${message}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  code => {
    process.exitCode = code;
  },
  err => {
    process.stderr.write(`mailbridge: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
