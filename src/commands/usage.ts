// Every command's usage line, options and help text (`mailbridge COMMAND --help`), and the
// options each one takes: the command line parses a command's arguments with its own set.
import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

const EXIT_CODES = `Exit status:
  0  success
  1  anything else (a message not found or busy, a folder that is not a spool, an I/O error)
  2  bad usage, or an invalid configuration (one line per wrong key)`;

const CONFIG = `  --config FILE   a .yaml, .yml or .json file layered over config/ (or MAILBRIDGE_CONFIG)`;
const SPOOL_CONFIG = `  --config FILE   where spool.dir is read from (or MAILBRIDGE_CONFIG; MAILBRIDGE_SPOOL_DIR wins);
                  only spool.dir is read: no token, no routes needed`;
const HELP = `  -h, --help      this text`;
const JSON_OPTION = `  --json          a JSON array for scripts instead of the table`;
const FILTERS = `  --mailbox M     only messages with a route to mailbox M not yet delivered (a route
                  without mailbox_id is named by its match, e.g. "*")
  --domain D      only messages with a recipient at domain D not yet delivered`;

/** One command: its usage line, what it does, its options (help text and parser's set). */
interface CommandHelp {
  usage: string;
  summary: string;
  options: string;
  parse: Options;
  more?: string;
}

const config = { config: { type: 'string' } } as const;
const json = { json: { type: 'boolean' } } as const;
const filters = {
  mailbox: { type: 'string' },
  domain: { type: 'string' },
} as const;

const LISTING = (what: string, extra = ''): CommandHelp => ({
  usage: `mailbridge queue ${what} [--json] [--mailbox M | --domain D] [--config FILE]`,
  summary: {
    list: 'The messages waiting in the spool (and those being delivered right now), oldest first:\na header row, a line per message (ID first), and a totals line.',
    dead: 'The dead messages: refused for good by the API, or out of retries. They stay until\nreplayed (queue replay ID, queue retry --dead) or purged.',
    held: "The messages a route's policy held (auto-replies, bounces, bulk mail, failed sender\nauthentication, trimmed bodies), with the reason.",
  }[what]!,
  options: [JSON_OPTION, FILTERS, SPOOL_CONFIG, HELP].join('\n'),
  parse: { ...config, ...json, ...filters },
  more: `Times are UTC. --json prints [{id, messageId, from, recipients, attempts, nextAttemptAt,\nlastError${extra}}], [] when there is none.`,
});

/** The help of every command, by its name (`queue list` for a queue action). */
export const COMMANDS: Record<string, CommandHelp> = {
  serve: {
    usage: 'mailbridge serve [--config FILE]',
    summary:
      'Runs the daemon: SMTP listener, spool, delivery workers, health and metrics HTTP.\nSIGTERM or SIGINT: a clean shutdown, exit 0. SIGHUP: the configuration read again.',
    options: [CONFIG, HELP].join('\n'),
    parse: config,
  },
  preview: {
    usage:
      'mailbridge preview FILE.eml [--rcpt ADDR]... [--from ADDR] [--pretty] [--config FILE]',
    summary:
      'Prints the JSON body that would be posted, one per route, attachments included.\nSends nothing and writes nothing.',
    options: [
      '  --rcpt ADDR     an envelope recipient (repeat it); default: the To and Cc addresses',
      '  --from ADDR     the envelope sender',
      '  --pretty        indented JSON',
      CONFIG,
      HELP,
    ].join('\n'),
    parse: {
      ...config,
      rcpt: { type: 'string', multiple: true },
      from: { type: 'string' },
      pretty: { type: 'boolean' },
    },
  },
  'check-config': {
    usage: 'mailbridge check-config [--config FILE]',
    summary:
      'Validates the configuration and prints it as the daemon would run on it, secrets masked.',
    options: [CONFIG, HELP].join('\n'),
    parse: config,
  },
  inject: {
    usage:
      'mailbridge inject FILE.eml --rcpt ADDR [--rcpt ADDR]... [--from ADDR] [--config FILE]',
    summary:
      'Spools a message as if it had arrived by SMTP (backfill, migration): a running daemon\ndelivers it at its next scan. Prints "queued as ID".',
    options: [
      '  --rcpt ADDR     an envelope recipient (repeat it); each must match a route',
      '  --from ADDR     the envelope sender (default: the null sender <>)',
      CONFIG,
      HELP,
    ].join('\n'),
    parse: {
      ...config,
      rcpt: { type: 'string', multiple: true },
      from: { type: 'string' },
    },
  },
  queue: {
    usage: 'mailbridge queue ACTION [ID] [options]',
    summary: `Inspects and operates the spool of a stopped or running daemon. Needs only spool.dir.

Actions:
  queue list|dead|held [--json]         messages waiting / dead / held by a route's
                                        policy (ID first; dead and held: the reason)
  queue show ID [--json]                one message: envelope, headers, routes, attempts
  queue retry ID|--all|--dead           make waiting messages due now; --dead: queue the
                                        dead ones again
  queue replay ID                       put a dead message back in the queue; a held
                                        one too, released from its hold (posted)
  queue purge ID|--all|--dead|--held    delete a waiting, dead or held message
  queue shape [--by mailbox|domain]     counts by age and mailbox (as Postfix's qshape)

Run "mailbridge queue ACTION --help" for an action's own options.`,
    options: [SPOOL_CONFIG, HELP].join('\n'),
    parse: config,
  },
  'queue list': LISTING('list'),
  'queue dead': LISTING('dead', ', reason'),
  'queue held': LISTING('held', ', reason'),
  'queue show': {
    usage: 'mailbridge queue show ID [--json] [--config FILE]',
    summary:
      'One message for a person: its state, envelope, a summary of its headers, each route\nwith its status, its attempts and last error, and where its raw file is.',
    options: [
      '  --json          the whole stored state, plus state and raw (the raw file), for scripts',
      SPOOL_CONFIG,
      HELP,
    ].join('\n'),
    parse: { ...config, ...json },
  },
  'queue retry': {
    usage:
      'mailbridge queue retry ID | [--all] [--dead] [--mailbox M | --domain D] [--config FILE]',
    summary: `Makes waiting messages due now (their history and attempts kept); with --dead, puts
dead messages back in the queue as queue replay does. A running daemon sees them at its
next scan (signalled through the spool's signal/ folder). Prints how many.`,
    options: [
      '  --all           every waiting message',
      '  --dead          every dead message, queued again (its failed routes pending, due now)',
      FILTERS,
      '                  (alone: the waiting and the dead messages of that mailbox or domain)',
      SPOOL_CONFIG,
      HELP,
    ].join('\n'),
    parse: {
      ...config,
      ...filters,
      all: { type: 'boolean' },
      dead: { type: 'boolean' },
    },
    more: 'A message being delivered at that moment is left alone and counted apart.',
  },
  'queue replay': {
    usage: 'mailbridge queue replay ID [--config FILE]',
    summary:
      'Puts a dead message back in the queue, due now (its failed routes pending again); a held\none too, its held routes released: the policy that held them lets them through.',
    options: [SPOOL_CONFIG, HELP].join('\n'),
    parse: config,
  },
  'queue purge': {
    usage:
      'mailbridge queue purge ID | [--all] [--dead] [--held] [--mailbox M | --domain D] [--config FILE]',
    summary: `Deletes messages for good: their state and raw file. Prints each ID purged and how many.`,
    options: [
      '  --all           every waiting message',
      '  --dead          every dead message',
      '  --held          every held message',
      FILTERS,
      '                  (alone: that mailbox or domain in every state)',
      SPOOL_CONFIG,
      HELP,
    ].join('\n'),
    parse: {
      ...config,
      ...filters,
      all: { type: 'boolean' },
      dead: { type: 'boolean' },
      held: { type: 'boolean' },
    },
    more: `With --mailbox or --domain, a message that also waits for another mailbox or domain is
kept (purge it by ID): purging it would drop the other one's mail too. A message being
delivered at that moment is left alone and counted apart.`,
  },
  'queue shape': {
    usage:
      'mailbridge queue shape [--by mailbox|domain] [--dead | --held] [--json] [--config FILE]',
    summary: `A table of message counts by age (since arrival) and mailbox, as Postfix's qshape:
one row per mailbox (or recipient domain) still owed the message, TOTAL first (each message
counted once there).`,
    options: [
      '  --by KEY        mailbox (default) or domain',
      '  --dead          the dead messages instead of the waiting ones',
      '  --held          the held messages instead of the waiting ones',
      '  --json          {by, buckets, total, rows: [{name, total, counts}]} for scripts',
      SPOOL_CONFIG,
      HELP,
    ].join('\n'),
    parse: {
      ...config,
      ...json,
      by: { type: 'string' },
      dead: { type: 'boolean' },
      held: { type: 'boolean' },
    },
  },
};

/** The usage of the whole command line (`mailbridge --help`). */
export const MAIN_USAGE = `Usage: mailbridge <command> [options]

Commands:
  serve [--config FILE]                        run the daemon
  preview FILE.eml [--rcpt ADDR]... [--from ADDR] [--pretty] [--config FILE]
                                               print the JSON body per route; sends nothing
  check-config [--config FILE]                 validate and print the effective configuration
  queue list|dead|held [--json]                messages waiting / dead / held by a route's
                                               policy (ID first; dead and held: the reason)
  queue show ID [--json]                       one message's full state
  queue retry ID|--all|--dead                  make waiting messages due now
  queue replay ID                              put a dead message back in the queue; a held
                                               one too, released from its hold (posted)
  queue purge ID|--all|--dead|--held           delete a waiting, dead or held message
  queue shape [--by mailbox|domain]            counts by age and mailbox (as qshape)
  inject FILE.eml --rcpt ADDR [--from ADDR]    spool a message as if received by SMTP

Options:
  --config FILE   a .yaml, .yml or .json file layered over config/ (or MAILBRIDGE_CONFIG)
  -h, --help      this text; "mailbridge COMMAND --help" for a command's own
  -v, --version   the version

${EXIT_CODES}
`;

/** The options of the command line before a command (or without one). */
export const MAIN_OPTIONS: Options = {
  ...config,
  version: { type: 'boolean', short: 'v' },
};

/** `--help` and `-h`, which every command takes. */
export const HELP_OPTION: Options = {
  help: { type: 'boolean', short: 'h' },
};

/** A command's full help text. */
export function helpText(name: string): string {
  const command = COMMANDS[name];
  if (!command) return MAIN_USAGE;
  return [
    `Usage: ${command.usage}`,
    '',
    command.summary,
    '',
    'Options:',
    command.options,
    ...(command.more ? ['', command.more] : []),
    '',
    EXIT_CODES,
    '',
  ].join('\n');
}

/** The one usage line shown after a usage error. */
export function usageLine(name: string | undefined): string {
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    return 'Usage: mailbridge <command> [options] (mailbridge --help)';
  }
  return `Usage: ${command.usage}\n(mailbridge ${name} --help for more)`;
}
