// winston logger (JSON lines, or pretty lines for a terminal): one root per process, a child
// per session and per message.
import winston from 'winston';
import { clipFields } from './clip-fields.js';
import { prettyFormat } from './pretty-format.js';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: string;
  /** log.format: `json` (the default: one JSON object a line) or `pretty` (for a person) */
  format?: 'json' | 'pretty';
  /** Where lines go; defaults to stdout. Tests pass their own stream to read the lines. */
  stream?: NodeJS.WritableStream;
}

/** Creates the root logger: JSON lines (or pretty ones) with a timestamp. */
export function createLogger(options: LoggerOptions): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  // colour only for a person at a terminal: never in a file, a pipe or a journal
  const stream = options.stream ?? process.stdout;
  const colour = (stream as { isTTY?: boolean }).isTTY === true;
  return gateLevels(
    winston.createLogger({
      level: options.level,
      format: winston.format.combine(
        winston.format.timestamp(),
        winston.format.errors({ stack: true }),
        clipFields(),
        options.format === 'pretty'
          ? prettyFormat({ colour })
          : winston.format.json(),
      ),
      transports: [transport],
    }),
  );
}

/**
 * Drops lines below the level before winston touches them. winston formats every line (the
 * timestamp, the JSON) and only then lets the transport filter it by level: at `warn` each
 * message's info lines cost that work for nothing. Children inherit the gate.
 */
function gateLevels(logger: Logger): Logger {
  const gated = logger as unknown as Record<string, unknown>;
  for (const level of Object.keys(logger.levels)) {
    const write = gated[level] as (...args: unknown[]) => Logger;
    gated[level] = function (this: Logger, ...args: unknown[]): Logger {
      return this.isLevelEnabled(level) ? write.apply(this, args) : this;
    };
  }
  const log = gated.log as (this: Logger, ...args: unknown[]) => Logger;
  gated.log = function (this: Logger, ...args: unknown[]): Logger {
    const level = typeof args[0] === 'string' ? args[0] : undefined;
    if (level !== undefined && !this.isLevelEnabled(level)) return this;
    return log.apply(this, args);
  };
  return logger;
}

/** An Error flattened for a log line (winston turns `{ err }` into `{}`). */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: err.message, errorName: err.name, code, stack: err.stack };
  }
  return { error: String(err) };
}
