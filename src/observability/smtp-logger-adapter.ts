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

/** Socket errors that only mean the client went away. */
const CLIENT_GONE = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Whether an error of smtp-server is the client's doing, not ours: it went away, or its TLS
 * handshake failed or never came (a health check or a port scan on an implicit-TLS port, a
 * client that speaks plain text after STARTTLS). Such errors are logged at debug, not error.
 */
export function isClientError(err: unknown): boolean {
  const { code, meta } = (err ?? {}) as { code?: unknown; meta?: unknown };
  if (typeof code === 'string') {
    if (
      CLIENT_GONE.has(code) ||
      code === 'SocketError' ||
      code === 'TLSError'
    ) {
      return true;
    }
    if (code.startsWith('ERR_SSL_')) return true;
  }
  // smtp-server marks the errors of a TLS handshake so
  return (meta as { stage?: unknown } | undefined)?.stage === 'connect';
}

function clientGone(meta: unknown): boolean {
  return isClientError((meta as { err?: unknown } | null)?.err);
}

/**
 * Wraps a winston logger in the bunyan-like shape smtp-server expects; `observe` sees every call,
 * whatever the level (smtp-server logs each command and reply at debug).
 */
export function smtpLoggerAdapter(
  log: Logger,
  observe?: LogFn,
): Record<string, LogFn> {
  const adapter: Record<string, LogFn> = {};
  for (const [from, to] of Object.entries(LEVELS)) {
    adapter[from] = (meta, fmt, ...args) => {
      observe?.(meta, fmt, ...args);
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
