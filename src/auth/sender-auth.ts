// Sender authentication of one message: SPF (client address, HELO, MAIL FROM), DKIM, DMARC and
// ARC evaluated by mailauth from the bytes as received, within a bounded time.
import { createReadStream } from 'node:fs';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { authenticate } from 'mailauth';
import type { Envelope } from '../mail/envelope.js';
import { cachedLookup, type DnsOptions, type Lookup } from './dns-cache.js';
import { summarise, type SenderAuth } from './verdict.js';

/** The raw message: its bytes, or the file holding them (from `start`, `length` bytes). */
export type RawMessage =
  Buffer | { path: string; start?: number; length?: number };

/** A whole evaluation takes at most this many DNS time limits (SPF alone may chain ten). */
export const EVALUATION_TIMEOUTS = 3;

export interface SenderAuthOptions {
  dns: DnsOptions;
  /** our host name, as Authentication-Results would name it (default: the machine's) */
  hostname?: string | null;
  /** told of every judgement made (metrics) */
  observe?: (auth: SenderAuth) => void;
}

/** Evaluates messages' senders; one per process, so that its DNS cache serves them all. */
export class SenderAuthenticator {
  private readonly lookup: Lookup;
  private readonly deadlineMs: number;
  private readonly mta: string;
  private readonly observe: (auth: SenderAuth) => void;

  constructor(options: SenderAuthOptions, lookup?: Lookup) {
    this.lookup = lookup ?? cachedLookup(options.dns);
    this.deadlineMs = options.dns.timeoutMs * EVALUATION_TIMEOUTS;
    this.mta = options.hostname ?? hostname();
    this.observe = options.observe ?? (() => undefined);
  }

  /** A judgement made by another thread's authenticator, told to `observe` here. */
  count(auth: SenderAuth): void {
    this.observe(auth);
  }

  /** The judgement on `raw` (see judge), told to `observe`. */
  async evaluate(raw: RawMessage, envelope: Envelope): Promise<SenderAuth> {
    const auth = await this.judge(raw, envelope);
    this.observe(auth);
    return auth;
  }

  /**
   * The judgement on `raw`, sent by `envelope`'s client. Never throws: a message mailauth cannot
   * read is a `fail` (permerror), an evaluation out of time a `temperror`.
   */
  private async judge(
    raw: RawMessage,
    envelope: Envelope,
  ): Promise<SenderAuth> {
    const input = readable(raw);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>(resolve => {
      timer = setTimeout(() => resolve('late'), this.deadlineMs);
    });
    const running = authenticate(input, {
      ip: clientAddress(envelope.remoteAddress),
      helo: envelope.helo || undefined,
      sender: envelope.mailFrom ?? undefined,
      mta: this.mta,
      resolver: this.lookup as never,
      disableBimi: true,
    });
    try {
      const result = await Promise.race([running, late]);
      if (result === 'late') {
        // its lookups end within their own limits; what they find is cached for the next
        running.catch(() => undefined);
        return failed('temperror', 'temperror');
      }
      return summarise(result);
    } catch {
      return failed('permerror', 'fail');
    } finally {
      clearTimeout(timer);
      if (!Buffer.isBuffer(input)) (input as Readable).destroy();
    }
  }
}

function readable(raw: RawMessage): Buffer | Readable {
  if (Buffer.isBuffer(raw)) return raw;
  const start = raw.start ?? 0;
  return createReadStream(raw.path, {
    start,
    end: raw.length === undefined ? undefined : start + raw.length - 1,
  });
}

/** An evaluation that came to no result of mailauth's. */
function failed(dmarc: string, verdict: SenderAuth['verdict']): SenderAuth {
  return { spf: 'none', dkim: 'none', dmarc, arc: 'none', verdict };
}

/** The client's address as SPF sees it: an IPv4-mapped IPv6 address is the IPv4 one. */
export function clientAddress(address: string | undefined): string | undefined {
  if (!address) return undefined;
  return address.startsWith('::ffff:') && address.includes('.')
    ? address.slice('::ffff:'.length)
    : address;
}
