// Long values clipped in log lines. Header values reach the log (a Message-ID, a From, an error
// naming a header), and a hostile message can make one a megabyte long: the fuzzer's
// `giantHeader` wrote a 1.5 MiB Message-ID whole into two lines per message. Each string value
// of a line (nested ones too) is cut to MAX_LOGGED_CHARS with a mark saying how much is left out.
import winston from 'winston';

/** The longest string value written whole into a log line. */
export const MAX_LOGGED_CHARS = 2048;

/** `value` cut to `max` characters, with the length it had; other values as they are. */
export function clipValue(value: unknown, max = MAX_LOGGED_CHARS): unknown {
  if (typeof value === 'string') {
    if (value.length <= max) return value;
    return `${value.slice(0, max)}… [${value.length - max} more characters]`;
  }
  if (Array.isArray(value)) {
    return value.some(needsClip(max))
      ? value.map(v => clipValue(v, max))
      : value;
  }
  if (isPlainObject(value)) {
    if (!Object.values(value).some(needsClip(max))) return value;
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, clipValue(v, max)]),
    );
  }
  return value;
}

function needsClip(max: number): (value: unknown) => boolean {
  const check = (value: unknown): boolean =>
    typeof value === 'string'
      ? value.length > max
      : Array.isArray(value)
        ? value.some(check)
        : isPlainObject(value) && Object.values(value).some(check);
  return check;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The winston format: every string field of the line clipped (the stack of an error too). */
export const clipFields = winston.format(info => {
  const record = info as unknown as Record<string | symbol, unknown>;
  for (const key of Object.keys(record)) {
    record[key] = clipValue(record[key]);
  }
  return info;
});
