// smtp-server calls logger[level](meta, format, ...args); winston wants (message, meta).
import { format } from 'node:util';
import type { Logger } from './logger.js';

type LogFn = (meta: unknown, fmt?: unknown, ...args: unknown[]) => void;

/** smtp-server's levels, demoted one step: its `info` is per-command chatter, our `debug`. */
const LEVELS: Record<string, string> = {
  trace: 'debug',
  debug: 'debug',
  info: 'debug',
  warn: 'warn',
  error: 'error',
  fatal: 'error',
};

/** Socket errors that only mean the client went away: not our error, logged at debug. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

function clientGone(meta: unknown): boolean {
  const err = (meta as { err?: { code?: unknown } } | null)?.err;
  return typeof err?.code === 'string' && CLIENT_GONE.has(err.code);
}

/** Wraps a winston logger in the bunyan-like shape smtp-server expects. */
export function smtpLoggerAdapter(log: Logger): Record<string, LogFn> {
  const adapter: Record<string, LogFn> = {};
  for (const [from, to] of Object.entries(LEVELS)) {
    adapter[from] = (meta, fmt, ...args) => {
      const level = clientGone(meta) ? 'debug' : to;
      if (!log.isLevelEnabled(level)) return;
      const fields =
        typeof meta === 'object' && meta !== null ? { ...meta } : {};
      log.log(level, format(fmt ?? '', ...args), {
        ...fields,
        component: 'smtp',
      });
    };
  }
  return adapter;
}
