// `queue list|dead|held|show|retry|replay|purge|shape`: the spool of a stopped or running
// daemon, by hand. Needs only spool.dir, and never creates a spool where there is none.
import { notASpool } from '../spool/is-spool.js';
import { Spool, type EntryState } from '../spool/spool.js';
import { purge, replay, retry } from './queue-actions.js';
import { purgeMany, retryMany, type Selection } from './queue-bulk.js';
import { runListing } from './queue-list.js';
import type { EntryFilter } from './queue-select.js';
import { runShape } from './queue-shape.js';
import { runShow } from './queue-show.js';

/** What the command line parsed for one queue action. */
export interface QueueCommand {
  action: string;
  id?: string;
  /** every waiting message (retry, purge) */
  all?: boolean;
  /** every dead message (retry, purge), or the dead ones (shape) */
  dead?: boolean;
  /** every held message (purge), or the held ones (shape) */
  held?: boolean;
  mailbox?: string;
  domain?: string;
  /** shape: mailbox or domain */
  by?: string;
  json?: boolean;
}

/** The actions, as `queue --help` names them. */
export const QUEUE_ACTIONS = [
  'list',
  'dead',
  'held',
  'show',
  'retry',
  'replay',
  'purge',
  'shape',
];

/** The shape of a queue id (see newQueueId): letters and digits only. */
const MESSAGE_ID = /^[0-9A-Za-z]+$/;

/** Actions that change the spool (the others only read it). */
const WRITES = new Set(['retry', 'replay', 'purge']);

/**
 * Runs one queue action on the spool in `dir`; resolves to the exit status (2 bad usage, 1 not
 * a spool, not found or busy).
 */
export async function runQueue(
  dir: string,
  command: QueueCommand,
): Promise<number> {
  const problem = checkUsage(command);
  if (problem) return usage(problem);
  const notSpool = await notASpool(dir);
  if (notSpool) return fail(notSpool);
  const spool = new Spool(dir);
  // a spool of an older version may lack signal/ or held/: made before anything moves
  if (WRITES.has(command.action)) await spool.init();
  const now = Date.now();
  const { action, id } = command;
  const filter: EntryFilter = {
    mailbox: command.mailbox,
    domain: command.domain,
  };
  const json = command.json === true;
  switch (action) {
    case 'list':
    case 'dead':
    case 'held':
      return runListing(spool, action, { json, filter, now });
    case 'show':
      return runShow(spool, id!, { json, now });
    case 'shape':
      return runShape(spool, {
        by: command.by === 'domain' ? 'domain' : 'mailbox',
        states: shapeStates(command),
        json,
        now,
      });
    case 'retry':
      if (id) return retry(spool, id, now);
      return retryMany(spool, selection(command, 'retry'), now);
    case 'replay':
      return replay(spool, id!, now);
    default: // purge
      if (id) return purge(spool, id);
      return purgeMany(spool, selection(command, 'purge'));
  }
}

/** What is wrong with the command's arguments, or null. */
export function checkUsage(command: QueueCommand): string | null {
  const { action, id } = command;
  if (!QUEUE_ACTIONS.includes(action)) {
    return `unknown queue action "${action}" (${QUEUE_ACTIONS.join(', ')})`;
  }
  // ids become file names: "../x" would reach (and purge would delete) files outside the spool
  if (id !== undefined && !MESSAGE_ID.test(id)) {
    return `not a message ID: "${id}" (letters and digits, as in queue list)`;
  }
  if (command.mailbox !== undefined && command.domain !== undefined) {
    return 'give --mailbox or --domain, not both';
  }
  const bulk =
    command.all || command.dead || command.held || hasFilter(command);
  if (['show', 'replay'].includes(action) && !id) {
    return `queue ${action} needs a message ID`;
  }
  if (['retry', 'purge'].includes(action)) {
    if (id && bulk) {
      return `queue ${action} takes an ID or selection options, not both`;
    }
    if (!id && !bulk) {
      return action === 'retry'
        ? 'queue retry needs a message ID, --all, --dead, --mailbox M or --domain D'
        : 'queue purge needs a message ID, --all, --dead, --held, --mailbox M or --domain D';
    }
  }
  if (['list', 'dead', 'held', 'shape'].includes(action) && id) {
    return `queue ${action} takes no ID`;
  }
  if (action === 'shape') {
    if (
      command.by !== undefined &&
      !['mailbox', 'domain'].includes(command.by)
    ) {
      return `--by takes mailbox or domain, not "${command.by}"`;
    }
    if (command.dead && command.held) return 'give --dead or --held, not both';
  }
  return null;
}

function hasFilter(command: QueueCommand): boolean {
  return command.mailbox !== undefined || command.domain !== undefined;
}

/**
 * The states a bulk retry or purge acts on: those named (--all: waiting, --dead, --held);
 * none named, with --mailbox or --domain: every state the action can act on.
 */
function selection(
  command: QueueCommand,
  action: 'retry' | 'purge',
): Selection {
  const named = command.all || command.dead || command.held;
  return {
    waiting: named ? command.all === true : true,
    dead: named ? command.dead === true : true,
    held: action === 'purge' && (named ? command.held === true : true),
    filter: { mailbox: command.mailbox, domain: command.domain },
  };
}

function shapeStates(command: QueueCommand): EntryState[] {
  if (command.dead) return ['dead'];
  if (command.held) return ['held'];
  return ['active', 'queue'];
}

function usage(message: string): number {
  process.stderr.write(`mailbridge: ${message}\n`);
  return 2;
}

function fail(message: string): number {
  process.stderr.write(`mailbridge: ${message}\n`);
  return 1;
}
