// The resolver sender authentication looks names up with: the configured servers (or the
// system's), a time limit per lookup, and a cache shared by every message of the process.
import { Resolver } from 'node:dns/promises';
import { withinTime } from '../lib/time-limit.js';

export interface DnsOptions {
  /** `host[:port]` resolvers; empty: the system's */
  servers: string[];
  /** the longest one lookup may take, retries included */
  timeoutMs: number;
}

/** A lookup as mailauth calls it: `(name, rrtype)`, the answers as node:dns gives them. */
export type Lookup = (name: string, rrtype: string) => Promise<unknown>;

/** How long an answer is kept: node:dns does not give TTLs for every type, so these stand in. */
export const CACHE_TTL_MS = {
  /** an answer */
  found: 5 * 60_000,
  /** no such name, or no record of that type (it may be published soon: kept shorter) */
  missing: 60_000,
  /** a server failure or a time out: not hammered, not believed for long */
  failed: 5_000,
};

/** Most names kept; the oldest go first. */
export const CACHE_MAX_ENTRIES = 10_000;

/** Errors that say the name or record does not exist (not a failure to find out). */
const MISSING = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME']);

interface Cached {
  expires: number;
  answer: Promise<unknown>;
}

/**
 * A cached lookup on `options.servers`. Lookups of the same name and type at the same time
 * share one query; a lookup not answered within timeoutMs fails with ETIMEOUT.
 */
export function cachedLookup(
  options: DnsOptions,
  now: () => number = Date.now,
): Lookup {
  // two tries of half the time each: one lost UDP packet is not a failure
  const resolver = new Resolver({
    timeout: Math.max(50, Math.floor(options.timeoutMs / 2)),
    tries: 2,
  });
  if (options.servers.length > 0) resolver.setServers(options.servers);
  const cache = new Map<string, Cached>();
  return (name, rrtype) => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const at = now();
    const hit = cache.get(key);
    if (hit && hit.expires > at) return hit.answer;
    cache.delete(key);
    const entry: Cached = {
      // until it settles, a lookup in flight is shared
      expires: Number.POSITIVE_INFINITY,
      answer: withTimeout(
        resolver.resolve(name, rrtype) as Promise<unknown>,
        options.timeoutMs,
      ),
    };
    entry.answer.then(
      () => (entry.expires = now() + CACHE_TTL_MS.found),
      (err: unknown) => {
        const code = (err as { code?: string }).code ?? '';
        entry.expires =
          now() +
          (MISSING.has(code) ? CACHE_TTL_MS.missing : CACHE_TTL_MS.failed);
      },
    );
    cache.set(key, entry);
    if (cache.size > CACHE_MAX_ENTRIES) {
      cache.delete(cache.keys().next().value!);
    }
    return entry.answer;
  };
}

/** `promise`, or an ETIMEOUT error after `ms` (the resolver's own limit is per try). */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return withinTime(
    promise,
    ms,
    (): never => {
      throw Object.assign(new Error(`DNS lookup timed out after ${ms} ms`), {
        code: 'ETIMEOUT',
      });
    },
    { unref: true },
  );
}
