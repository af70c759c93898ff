// The SMTP listener's TLS: the key and certificate read once at start and checked as a pair.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { SmtpConfig } from '../config/schema.js';
import { ConfigError } from '../errors/bridge-error.js';

/** The smtp-server options of TLS, when a key and certificate are configured. */
export interface ServerTls {
  key: Buffer;
  cert: Buffer;
  /** implicit TLS: the handshake before the greeting (smtp-server's `secure`) */
  secure: boolean;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/**
 * Reads `smtp.tls`'s files; undefined without them (no TLS offered). Throws ConfigError, naming
 * the key, when a file cannot be read or the two do not make a usable pair.
 */
export function loadServerTls(tls: SmtpConfig['tls']): ServerTls | undefined {
  if (tls.key === null || tls.cert === null) return undefined;
  const key = readPem('smtp.tls.key', tls.key);
  const cert = readPem('smtp.tls.cert', tls.cert);
  try {
    createSecureContext({ key, cert, minVersion: tls.minVersion });
  } catch (err) {
    throw new ConfigError(
      `smtp.tls: the key and certificate cannot be used: ${(err as Error).message}`,
    );
  }
  return { key, cert, secure: tls.implicit, minVersion: tls.minVersion };
}

function readPem(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`${name}: cannot read ${path} (${code})`);
  }
}
