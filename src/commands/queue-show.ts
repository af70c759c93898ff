// `queue show ID`: one message for a person (state, envelope, headers, routes, attempts), or
// with `--json` its whole stored state for scripts.
import type { QueueEntry, RouteState } from '../spool/queue-entry.js';
import type { EntryState, Spool } from '../spool/spool.js';
import { headerSummary, readRawHead } from './queue-headers.js';
import { mailboxOf } from './queue-select.js';
import {
  formatDue,
  formatSize,
  formatTable,
  formatTime,
  printable,
} from './queue-table.js';

/** Attempts shown from the history, newest last. */
const HISTORY_SHOWN = 10;

const STATE_TEXT: Record<EntryState, string> = {
  queue: 'waiting (queue/)',
  active: 'being delivered right now (claimed)',
  dead: 'dead (dead/)',
  held: 'held (held/)',
};

/** Prints one message; 1 when it is not in the spool. */
export async function runShow(
  spool: Spool,
  id: string,
  options: { json: boolean; now: number },
): Promise<number> {
  const found = await spool.find(id);
  if (!found) {
    process.stderr.write(`mailbridge: no message ${id} in the spool\n`);
    return 1;
  }
  const raw = await spool.locateRaw(id);
  if (options.json) {
    const out = { state: found.state, raw, ...found.entry };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const headers = raw
    ? headerSummary(
        await readRawHead(raw, found.entry).catch(() => Buffer.alloc(0)),
      )
    : [];
  const lines = formatShow({
    state: found.state,
    entry: found.entry,
    raw,
    headers,
    now: options.now,
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** What `queue show` prints about one message. */
export interface ShowInput {
  state: EntryState;
  entry: QueueEntry;
  raw: string | null;
  headers: Array<[string, string]>;
  now: number;
}

/** The text of `queue show`: labelled fields, then headers, routes and attempts. */
export function formatShow(input: ShowInput): string[] {
  const { state, entry, now } = input;
  const env = entry.envelope;
  const field = (label: string, value: string) =>
    `${`${label}:`.padEnd(14)}${value}`;
  const about = [env.helo ? `helo ${env.helo}` : '', env.secure ? 'TLS' : '']
    .filter(Boolean)
    .join(', ');
  const client = [
    env.remoteAddress ? `[${env.remoteAddress}]` : '',
    about ? `(${about})` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const out = [
    field('Message', entry.id),
    field('State', stateLine(state, entry, now)),
    field(
      'Arrival',
      `${formatTime(env.receivedAt)} UTC${client ? ` from ${printable(client)}` : ''}`,
    ),
    field('Sender', printable(`<${env.mailFrom ?? ''}>`)),
    field('Recipients', printable(env.rcptTo.join(', '))),
    field('Size', `${formatSize(entry.size)} (${entry.size} bytes)`),
    field('Message-ID', printable(entry.messageId ?? '(none)')),
    field('Attempts', String(entry.attempts)),
  ];
  if (entry.lastError) {
    out.push(field('Last error', printable(entry.lastError)));
  }
  if (entry.dead) {
    out.push(
      field(
        'Dead',
        `${formatTime(entry.dead.at)} UTC: ${printable(withApiErrors(entry.dead.reason, entry.dead.apiErrors))}`,
      ),
    );
  }
  if (entry.held) {
    out.push(
      field(
        'Held',
        `${formatTime(entry.held.at)} UTC: ${printable(entry.held.reason)}`,
      ),
    );
  }
  if (entry.auth) {
    const a = entry.auth;
    out.push(
      field(
        'Sender auth',
        printable(
          `${a.verdict} (spf ${a.spf}, dkim ${a.dkim}, dmarc ${a.dmarc})`,
        ),
      ),
    );
  }
  out.push(field('Raw file', input.raw ?? '(missing)'));
  if (input.headers.length > 0) {
    out.push('', 'Headers:');
    for (const [name, value] of input.headers) {
      out.push(`  ${name}: ${printable(value)}`);
    }
  }
  out.push('', 'Routes:');
  out.push(
    ...formatTable(
      [
        { label: '  #' },
        { label: 'MAILBOX' },
        { label: 'RECIPIENTS' },
        { label: 'STATUS' },
      ],
      entry.routes.map(r => [
        `  ${r.index}`,
        printable(mailboxOf(r)),
        printable(r.recipients.join(', ')),
        printable(routeStatus(r)),
      ]),
    ),
  );
  if (entry.history.length > 0) {
    const shown = entry.history.slice(-HISTORY_SHOWN);
    const skipped = entry.history.length - shown.length;
    out.push('', `History${skipped ? ` (last ${shown.length})` : ''}:`);
    for (const attempt of shown) {
      const results = Object.entries(attempt.results)
        .map(([index, text]) => `#${index} ${text}`)
        .join(', ');
      out.push(`  ${formatTime(attempt.at)}  ${printable(results)}`);
    }
  }
  return out;
}

function stateLine(state: EntryState, entry: QueueEntry, now: number): string {
  const text = STATE_TEXT[state];
  if (state !== 'queue') return text;
  return `${text}, next attempt ${formatDue(entry.nextAttemptAt, now)} (${formatTime(entry.nextAttemptAt)} UTC)`;
}

/** A route's status with what explains it: its error, its hold, its drop, its trim. */
function routeStatus(route: RouteState): string {
  const notes = [
    route.released ? 'released by an operator' : '',
    route.dropped ? `dropped: ${route.dropped}` : '',
    route.heldReason ? `${route.heldReason}` : '',
    route.trimmed?.length ? `posted without ${route.trimmed.join(', ')}` : '',
    route.status !== 'delivered' && route.lastError
      ? withApiErrors(route.lastError, route.api?.errors)
      : '',
  ].filter(Boolean);
  return notes.length ? `${route.status}: ${notes.join('; ')}` : route.status;
}

/** An error text, with the API's `errors` (code: message) after it when it sent any. */
export function withApiErrors(text: string, errors?: unknown[]): string {
  const said = (errors ?? [])
    .map(e => {
      const { code, message } = (e ?? {}) as {
        code?: unknown;
        message?: unknown;
      };
      return [code, message].filter(v => typeof v === 'string').join(': ');
    })
    .filter(Boolean);
  return said.length ? `${text} (${said.join('; ')})` : text;
}
