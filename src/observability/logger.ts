// winston JSON logger: one root per process, a child per session and per message.
import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: string;
  /** Where lines go; defaults to stdout. Tests pass their own stream to read the lines. */
  stream?: NodeJS.WritableStream;
}

/** Creates the root logger: JSON lines with a timestamp. */
export function createLogger(options: LoggerOptions): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      winston.format.json(),
    ),
    transports: [transport],
  });
}

/** An Error flattened for a log line (winston turns `{ err }` into `{}`). */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: err.message, errorName: err.name, code, stack: err.stack };
  }
  return { error: String(err) };
}
