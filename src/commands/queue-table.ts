// Pure formatting for the `queue` commands' text output: aligned tables, sizes, times and ages,
// and cells made safe for a terminal.

/** How a column lines up: text to the left, numbers to the right. */
export type Align = 'left' | 'right';

/** One column of a table: its label and its alignment (default left). */
export interface Column {
  label: string;
  align?: Align;
}

/**
 * A header row and one line per row, columns separated by two spaces and padded to the widest
 * cell. The last column is not padded (no trailing spaces), so it may be long (an error text).
 */
export function formatTable(columns: Column[], rows: string[][]): string[] {
  const all = [columns.map(c => c.label), ...rows];
  const widths = columns.map((_, i) =>
    Math.max(...all.map(row => [...(row[i] ?? '')].length)),
  );
  const last = columns.length - 1;
  return all.map(row =>
    columns
      .map((column, i) => {
        const cell = row[i] ?? '';
        if (i === last && column.align !== 'right') return cell;
        const pad = ' '.repeat(widths[i]! - [...cell].length);
        return column.align === 'right' ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd(),
  );
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** A byte count for a person: `812 B`, `1.2 KiB`, `20.0 MiB`. */
export function formatSize(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** A time as `2026-12-07 08:13:54` (UTC, to the second); `-` for none or a bad value. */
export function formatTime(time: number | string | null | undefined): string {
  if (time === null || time === undefined) return '-';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return '-';
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A duration for a person, its two largest units: `45s`, `12m`, `2h05m`, `3d04h`. */
export function formatDuration(ms: number): string {
  const d = Math.max(0, Math.floor(ms));
  if (d < MINUTE) return `${Math.floor(d / SECOND)}s`;
  if (d < HOUR) return `${Math.floor(d / MINUTE)}m`;
  const two = (n: number) => String(n).padStart(2, '0');
  if (d < DAY) {
    return `${Math.floor(d / HOUR)}h${two(Math.floor((d % HOUR) / MINUTE))}m`;
  }
  return `${Math.floor(d / DAY)}d${two(Math.floor((d % DAY) / HOUR))}h`;
}

/** When a waiting message is next tried: `now` once due, else `in 12m`. */
export function formatDue(nextAttemptAt: number, now: number): string {
  return nextAttemptAt <= now
    ? 'now'
    : `in ${formatDuration(nextAttemptAt - now)}`;
}

/** Recipients in a cell: the first `shown`, then how many more. */
export function formatRecipients(recipients: string[], shown = 2): string {
  const head = recipients.slice(0, shown).join(', ');
  const more = recipients.length - shown;
  return more > 0 ? `${head} (+${more})` : head;
}

/** C0 and C1 controls and DEL, which a terminal would act on. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what we escape
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text from the spool (addresses, Message-IDs, API error texts: all from outside) made safe to
 * print: a control character (an escape sequence could rewrite the operator's screen) is shown
 * as `\xNN` instead.
 */
export function printable(text: string | null | undefined): string {
  if (!text) return '';
  return text.replace(
    CONTROLS,
    c => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** "1 message", "3 messages". */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
