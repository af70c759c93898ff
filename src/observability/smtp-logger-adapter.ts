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

/** Wraps a winston logger in the bunyan-like shape smtp-server expects. */
export function smtpLoggerAdapter(log: Logger): Record<string, LogFn> {
  const adapter: Record<string, LogFn> = {};
  for (const [from, to] of Object.entries(LEVELS)) {
    adapter[from] = (meta, fmt, ...args) => {
      if (!log.isLevelEnabled(to)) return;
      const fields =
        typeof meta === 'object' && meta !== null ? { ...meta } : {};
      log.log(to, format(fmt ?? '', ...args), { ...fields, component: 'smtp' });
    };
  }
  return adapter;
}
