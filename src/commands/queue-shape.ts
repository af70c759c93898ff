// `queue shape`: message counts by age and by mailbox (or recipient domain), as Postfix's
// qshape shows a queue: where mail piles up, and since when.
import type { QueueEntry } from '../spool/queue-entry.js';
import type { EntryState, Spool } from '../spool/spool.js';
import { readStates } from './queue-list.js';
import { keysOf } from './queue-select.js';
import { formatTable, printable, type Column } from './queue-table.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * The age buckets: each takes ages from the previous bound (inclusive) up to its own
 * (exclusive); the last takes a day and more.
 */
export const BUCKETS: ReadonlyArray<{ label: string; below: number }> = [
  { label: '0-5m', below: 5 * MINUTE },
  { label: '5-10m', below: 10 * MINUTE },
  { label: '10-20m', below: 20 * MINUTE },
  { label: '20-40m', below: 40 * MINUTE },
  { label: '40m-1h', below: HOUR },
  { label: '1-2h', below: 2 * HOUR },
  { label: '2-4h', below: 4 * HOUR },
  { label: '4-8h', below: 8 * HOUR },
  { label: '8h-1d', below: 24 * HOUR },
  { label: '>1d', below: Infinity },
];

/** The bucket of an age in ms (a negative age, a clock moved back, counts as new). */
export function ageBucket(ageMs: number): number {
  return BUCKETS.findIndex(b => ageMs < b.below);
}

/** One row of the shape: a name, its total and its counts per bucket. */
export interface ShapeRow {
  name: string;
  total: number;
  counts: number[];
}

/** The whole shape, as `--json` prints it. */
export interface Shape {
  by: 'mailbox' | 'domain';
  buckets: string[];
  total: ShapeRow;
  rows: ShapeRow[];
}

/**
 * Counts messages by age since arrival and by what they are still owed to. A message owed to
 * two mailboxes counts in both rows, and once in the total. Rows: most messages first.
 */
export function shapeOf(
  entries: QueueEntry[],
  by: 'mailbox' | 'domain',
  now: number,
): Shape {
  const empty = (name: string): ShapeRow => ({
    name,
    total: 0,
    counts: BUCKETS.map(() => 0),
  });
  const total = empty('TOTAL');
  const rows = new Map<string, ShapeRow>();
  for (const entry of entries) {
    const arrival = Date.parse(entry.envelope.receivedAt);
    const bucket = ageBucket(
      now - (Number.isNaN(arrival) ? entry.createdAt : arrival),
    );
    for (const row of [total, ...keysOf(entry, by).map(rowFor)]) {
      row.total++;
      row.counts[bucket]!++;
    }
  }
  return {
    by,
    buckets: BUCKETS.map(b => b.label),
    total,
    rows: [...rows.values()].sort(
      (a, b) => b.total - a.total || a.name.localeCompare(b.name),
    ),
  };

  function rowFor(key: string): ShapeRow {
    const name = key || '(no domain)';
    let row = rows.get(name);
    if (!row) rows.set(name, (row = empty(name)));
    return row;
  }
}

/** The shape as a table: the names, TOTAL first, then a column per bucket. */
export function formatShape(shape: Shape): string[] {
  const columns: Column[] = [
    { label: shape.by === 'mailbox' ? 'MAILBOX' : 'DOMAIN' },
    { label: 'TOTAL', align: 'right' },
    ...shape.buckets.map(label => ({ label, align: 'right' as const })),
  ];
  const rows = [shape.total, ...shape.rows].map(row => [
    printable(row.name),
    String(row.total),
    ...row.counts.map(String),
  ]);
  return formatTable(columns, rows);
}

/** `queue shape`: the waiting messages (or the dead or held ones). */
export async function runShape(
  spool: Spool,
  options: {
    by: 'mailbox' | 'domain';
    states: EntryState[];
    json: boolean;
    now: number;
  },
): Promise<number> {
  const found = await readStates(spool, options.states);
  const shape = shapeOf(
    found.map(f => f.entry),
    options.by,
    options.now,
  );
  const text = options.json
    ? JSON.stringify(shape, null, 2)
    : formatShape(shape).join('\n');
  process.stdout.write(`${text}\n`);
  return 0;
}
