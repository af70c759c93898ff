// log.format: pretty: one line per event for a person at a terminal (time, level, message, then
// key=value fields), the level coloured only when the output is a terminal.
import { format as winstonFormat, type Logform } from 'winston';

/** Where winston takes the finished line from (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');

/** winston's own keys of a log entry, which the line shows in its own places or not at all. */
const OWN_KEYS = new Set(['level', 'message', 'timestamp']);

/** ANSI colours of the levels (only on a terminal). */
const COLOURS: Record<string, string> = {
  error: '\u001b[31m',
  warn: '\u001b[33m',
  info: '\u001b[32m',
  debug: '\u001b[90m',
};
const RESET = '\u001b[0m';

/** The widest level name, so that messages line up. */
const LEVEL_WIDTH = 5;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export interface PrettyOptions {
  /** colour the level (the output is a terminal) */
  colour: boolean;
}

/**
 * One log entry as a line: `time level message key=value ...`. A value with spaces, quotes,
 * `=` or control characters is quoted as JSON (so a line never breaks, whatever a client sent);
 * objects and arrays are JSON; undefined fields are left out.
 */
export function formatPretty(
  entry: Record<string, unknown>,
  options: PrettyOptions,
): string {
  const level = String(entry.level ?? '');
  const padded = level.padEnd(LEVEL_WIDTH);
  const shown =
    options.colour && COLOURS[level]
      ? `${COLOURS[level]}${padded}${RESET}`
      : padded;
  const parts = [String(entry.timestamp ?? ''), shown, text(entry.message)];
  for (const [key, value] of Object.entries(entry)) {
    if (OWN_KEYS.has(key) || value === undefined) continue;
    parts.push(`${key}=${fieldValue(value)}`);
  }
  return parts.filter(p => p !== '').join(' ');
}

/** The message itself, unquoted unless it holds control characters (then JSON-escaped). */
function text(message: unknown): string {
  const s = typeof message === 'string' ? message : fieldValue(message);
  return CONTROL.test(s) ? JSON.stringify(s).slice(1, -1) : s;
}

function fieldValue(value: unknown): string {
  if (typeof value === 'string') {
    return value === '' || /[\s"=]/.test(value) || CONTROL.test(value)
      ? JSON.stringify(value)
      : value;
  }
  if (
    value === null ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    typeof value === 'bigint'
  ) {
    return String(value);
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // a cycle: say so rather than lose the line
    return '"[unserializable]"';
  }
}

/** The winston format of log.format: pretty (after the timestamp and errors formats). */
export function prettyFormat(options: PrettyOptions): Logform.Format {
  return winstonFormat(info => {
    const entry = info as Logform.TransformableInfo & Record<symbol, unknown>;
    entry[MESSAGE] = formatPretty(entry, options);
    return entry;
  })();
}
