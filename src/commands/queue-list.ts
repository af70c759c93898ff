// `queue list | dead | held`: the messages of some states, as a table for a person or the
// contract's JSON array for scripts.
import type { QueueEntry } from '../spool/queue-entry.js';
import type { EntryState, Spool } from '../spool/spool.js';
import { matchesFilter, type EntryFilter } from './queue-select.js';
import {
  formatDue,
  formatRecipients,
  formatSize,
  formatTable,
  formatTime,
  plural,
  printable,
  type Column,
} from './queue-table.js';

/** One row of `list` / `dead` / `held` in `--json`: the contract's fields (+ reason). */
export interface QueueSummary {
  id: string;
  messageId: string | null;
  from: string | null;
  recipients: string[];
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  /** dead and held entries: why */
  reason?: string;
}

/** Which listing: the states it reads, and what it says when there is nothing. */
export type Listing = 'list' | 'dead' | 'held';

const STATES: Record<Listing, EntryState[]> = {
  list: ['active', 'queue'],
  dead: ['dead'],
  held: ['held'],
};

const EMPTY: Record<Listing, string> = {
  list: 'queue is empty',
  dead: 'no dead messages',
  held: 'no held messages',
};

/** An entry read with the state it was found in. */
export interface Found {
  state: EntryState;
  entry: QueueEntry;
}

/** The entries of `states` the filter takes, by id (oldest first). */
export async function readStates(
  spool: Spool,
  states: EntryState[],
  filter: EntryFilter = {},
): Promise<Found[]> {
  const all: Found[] = [];
  for (const state of states) {
    for (const entry of await spool.list(state)) {
      if (matchesFilter(entry, filter)) all.push({ state, entry });
    }
  }
  return all.sort((a, b) => a.entry.id.localeCompare(b.entry.id));
}

/** The public summary of an entry (the contract's `--json` fields). */
export function summarise(entry: QueueEntry): QueueSummary {
  return {
    id: entry.id,
    messageId: entry.messageId,
    from: entry.envelope.mailFrom,
    recipients: entry.envelope.rcptTo,
    attempts: entry.attempts,
    nextAttemptAt:
      entry.dead || entry.held
        ? null
        : new Date(entry.nextAttemptAt).toISOString(),
    lastError: entry.lastError,
    ...(entry.dead ? { reason: entry.dead.reason } : {}),
    ...(entry.held && !entry.dead ? { reason: entry.held.reason } : {}),
  };
}

/** Prints one listing; resolves to the exit status. */
export async function runListing(
  spool: Spool,
  listing: Listing,
  options: { json: boolean; filter: EntryFilter; now: number },
): Promise<number> {
  const found = await readStates(spool, STATES[listing], options.filter);
  if (options.json) {
    const rows = found.map(f => summarise(f.entry));
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    `${formatListing(listing, found, options.now).join('\n')}\n`,
  );
  return 0;
}

/** The text of a listing: header row, a line per message, the totals line (or "empty"). */
export function formatListing(
  listing: Listing,
  found: Found[],
  now: number,
): string[] {
  if (found.length === 0) return [EMPTY[listing]];
  const columns: Column[] = [
    { label: 'ID' },
    { label: 'ARRIVAL (UTC)' },
    {
      label: { list: 'NEXT ATTEMPT', dead: 'DEAD SINCE', held: 'HELD SINCE' }[
        listing
      ],
    },
    { label: 'SIZE', align: 'right' },
    { label: 'TRIES', align: 'right' },
    { label: 'FROM' },
    { label: 'RECIPIENTS' },
    { label: listing === 'held' ? 'REASON' : 'LAST ERROR' },
  ];
  const rows = found.map(({ state, entry }) => [
    entry.id,
    formatTime(entry.envelope.receivedAt),
    listing === 'list'
      ? state === 'active'
        ? 'delivering'
        : formatDue(entry.nextAttemptAt, now)
      : formatTime((entry.dead ?? entry.held)?.at),
    formatSize(entry.size),
    String(entry.attempts),
    printable(entry.envelope.mailFrom ?? '<>'),
    printable(formatRecipients(entry.envelope.rcptTo)),
    printable(
      listing === 'held'
        ? entry.held?.reason
        : (entry.dead?.reason ?? entry.lastError ?? ''),
    ),
  ]);
  return [...formatTable(columns, rows), totalsLine(found)];
}

/** `-- 3 messages, 5 recipients, 2.1 KiB (1 being delivered)`, as postqueue ends its list. */
function totalsLine(found: Found[]): string {
  const recipients = found.reduce(
    (sum, f) => sum + f.entry.envelope.rcptTo.length,
    0,
  );
  const bytes = found.reduce((sum, f) => sum + f.entry.size, 0);
  const active = found.filter(f => f.state === 'active').length;
  return (
    `-- ${plural(found.length, 'message')}, ${plural(recipients, 'recipient')}, ` +
    `${formatSize(bytes)}${active ? ` (${active} being delivered)` : ''}`
  );
}
