#!/usr/bin/env node
// The command line: serve | preview | check-config | queue | inject, each with its own options
// and --help (commands/usage.ts).
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
import { checkUsage, runQueue, type QueueCommand } from './commands/queue.js';
import { runServe } from './commands/serve.js';
import {
  COMMANDS,
  HELP_OPTION,
  MAIN_OPTIONS,
  helpText,
  usageLine,
} from './commands/usage.js';
import { loadSpoolDir } from './config/spool-only.js';
import { loadServerTls } from './smtp/server-tls.js';

/** Every option any command takes, for the first pass that only finds the command's name. */
const ANY_OPTION = Object.assign(
  {},
  MAIN_OPTIONS,
  HELP_OPTION,
  ...Object.values(COMMANDS).map(c => c.parse),
) as ParseArgsConfig['options'];

/** Runs one command; resolves to the exit status (0 ok, 2 usage or configuration, 1 other). */
export async function main(argv: string[]): Promise<number> {
  const name = commandName(argv);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...(name ? {} : MAIN_OPTIONS),
        ...HELP_OPTION,
        ...(COMMANDS[name ?? '']?.parse ?? MAIN_OPTIONS),
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usageError((err as Error).message, name);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help) {
    process.stdout.write(helpText(name ?? ''));
    return 0;
  }
  if (values.version && !name) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const file = values.config as string | undefined;
  const rcpt = (values.rcpt as string[] | undefined) ?? [];
  const from = values.from as string | undefined;
  try {
    switch (command) {
      case 'serve':
        if (rest.length) return usageError('serve takes no arguments', name);
        // A served daemon may leave keep-alive handles behind: exit once it has closed.
        process.exit(
          await runServe(loadChecked(file), () => loadChecked(file).config),
        );
        break;
      case 'check-config':
        if (rest.length) {
          return usageError('check-config takes no arguments', name);
        }
        return runCheckConfig(loadChecked(file));
      case 'preview': {
        if (rest.length !== 1 || !rest[0]) {
          return usageError('preview needs one FILE.eml', name);
        }
        return await runPreview(loadConfig({ file }), {
          file: rest[0],
          rcpt,
          from,
          pretty: values.pretty === true,
        });
      }
      case 'queue': {
        const [action, id, ...extra] = rest;
        if (!action || extra.length) {
          return usageError('queue needs an action and at most one ID', name);
        }
        const queueCommand: QueueCommand = {
          action,
          id,
          all: values.all === true,
          dead: values.dead === true,
          held: values.held === true,
          mailbox: values.mailbox as string | undefined,
          domain: values.domain as string | undefined,
          by: values.by as string | undefined,
          json: values.json === true,
        };
        const problem = checkUsage(queueCommand);
        if (problem) return usageError(problem, name);
        return await runQueue(loadSpoolDir({ file }), queueCommand);
      }
      case 'inject':
        if (rest.length !== 1 || !rest[0]) {
          return usageError('inject needs one FILE.eml', name);
        }
        return await runInject(loadConfig({ file }), {
          file: rest[0],
          rcpt,
          from,
        });
      case 'help':
        // `mailbridge help queue list` is `mailbridge queue list --help`
        process.stdout.write(helpText(rest.join(' ')));
        return 0;
      case undefined:
        return usageError('a command is required', name);
      default:
        return usageError(`unknown command "${command}"`, name);
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
 * The command the arguments name, as COMMANDS knows it (`queue list` for a queue action, `queue`
 * for an unknown or missing one); undefined before a command or for an unknown one.
 */
function commandName(argv: string[]): string | undefined {
  let positionals: string[];
  try {
    ({ positionals } = parseArgs({
      args: argv,
      options: ANY_OPTION,
      allowPositionals: true,
      strict: false,
    }));
  } catch {
    return undefined;
  }
  const [command, action] = positionals;
  if (!command || !(command in COMMANDS)) return undefined;
  if (command === 'queue' && action && `queue ${action}` in COMMANDS) {
    return `queue ${action}`;
  }
  return command;
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

/** A usage error: its message and the command's usage line; exit status 2. */
function usageError(message: string, name: string | undefined): number {
  process.stderr.write(`mailbridge: ${message}\n${usageLine(name)}\n`);
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
