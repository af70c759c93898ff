// Sender authentication of one message: SPF (client address, HELO, MAIL FROM), DKIM, DMARC and
// ARC evaluated by mailauth from the bytes as received, within a bounded time, lookups and CPU.
import { createReadStream } from 'node:fs';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import type { Envelope } from '../mail/envelope.js';
import {
  HEADER_READ_LIMIT,
  readHeaderBytes,
  type RawMessage,
} from '../mail/header-block.js';
import { cachedLookup, type DnsOptions, type Lookup } from './dns-cache.js';
import { summarise, type SenderAuth } from './verdict.js';
import { withinTime } from '../lib/time-limit.js';

export type { RawMessage };

/** A whole evaluation takes at most this many DNS time limits (SPF alone: one). */
export const EVALUATION_TIMEOUTS = 3;

/** The most DNS lookups one evaluation may make (SPF alone may make 10, plus its void ones). */
export const MAX_LOOKUPS = 40;

/**
 * The most signature fields (DKIM-Signature, ARC-Seal, ARC-Message-Signature) a message may have
 * to be evaluated: each costs lookups and a body hash, one after the other, and a stranger can
 * write thousands. A message over it is judged `fail` without mailauth.
 */
export const MAX_SIGNATURES = 16;

/**
 * How long the verdict on an unsigned message is kept for the next one with the same client,
 * HELO, MAIL FROM and From fields: with no signature, SPF and DMARC read nothing else (and DNS,
 * whose answers the cache keeps longer: dns-cache.ts). Shorter than the shortest cached answer
 * but a failure's, which is never kept here.
 */
export const UNSIGNED_VERDICT_MS = 30_000;

/** At most this many kept verdicts (the oldest go first), each for a key of at most 2 KiB. */
const MAX_VERDICTS = 10_000;
const MAX_KEY_CHARS = 2048;

export interface SenderAuthOptions {
  dns: DnsOptions;
  /** our host name, as Authentication-Results would name it (default: the machine's) */
  hostname?: string | null;
  /** told of every judgement made (metrics) */
  observe?: (auth: SenderAuth) => void;
}

/** Evaluates messages' senders; one per thread, so that its DNS cache serves them all. */
export class SenderAuthenticator {
  private readonly lookup: Lookup;
  private readonly timeoutMs: number;
  private readonly mta: string;
  private readonly observe: (auth: SenderAuth) => void;
  /** verdicts on unsigned messages by unsignedKey, with when they were made */
  private readonly verdicts = new Map<
    string,
    { at: number; auth: SenderAuth }
  >();

  constructor(
    options: SenderAuthOptions,
    lookup?: Lookup,
    private readonly now: () => number = Date.now,
  ) {
    this.lookup = lookup ?? cachedLookup(options.dns);
    this.timeoutMs = options.dns.timeoutMs;
    this.mta = options.hostname ?? hostname();
    this.observe = options.observe ?? (() => undefined);
  }

  /** A judgement made by another thread's authenticator, told to `observe` here. */
  count(auth: SenderAuth): void {
    this.observe(auth);
  }

  /** The judgement on `raw` (see judge), told to `observe`. */
  async evaluate(
    raw: RawMessage,
    envelope: Envelope,
    /** `raw`'s header block, when the caller has read it already (readHeaderBytes) */
    header?: Buffer,
  ): Promise<SenderAuth> {
    const auth = await this.judge(raw, envelope, header);
    this.observe(auth);
    return auth;
  }

  /**
   * The judgement on `raw`, sent by `envelope`'s client. Never throws: a message mailauth cannot
   * read is a `fail` (permerror), one that cannot be read from disk a `temperror`, and one
   * whose evaluation runs out of time a `temperror` marked `late` (which the thread guard does
   * not trust: a stranger's own slow DNS must not buy a thread).
   */
  private async judge(
    raw: RawMessage,
    envelope: Envelope,
    header: Buffer | undefined,
  ): Promise<SenderAuth> {
    // before any deadline is set: the first judgement's load is not the evaluation's time
    await loadMailauth();
    let head: Buffer;
    try {
      head = header ?? (await readHeaderBytes(raw));
    } catch {
      return failed('temperror', 'temperror');
    }
    const text = head.toString('latin1');
    const signatures = countSignatures(text);
    if (signatures > MAX_SIGNATURES) {
      return { ...failed('permerror', 'fail'), dkim: 'policy' };
    }
    // nothing signed: SPF and DMARC read the envelope and the header alone, and DKIM and ARC have
    // nothing to verify. A header block cut at the read limit is not whole
    const headerOnly = signatures === 0 && head.length < HEADER_READ_LIMIT;
    const key = headerOnly ? unsignedKey(text, envelope) : undefined;
    // past their time, they are gone: what is found is good
    this.sweep();
    const kept = key === undefined ? undefined : this.verdicts.get(key);
    if (kept) return { ...kept.auth };
    const auth = await this.evaluateNow(
      headerOnly ? Buffer.concat([head, CRLF]) : readable(raw),
      envelope,
    );
    // a lookup that failed or came late (a temperror either way) is asked again next time
    if (key !== undefined && !hasTemperror(auth)) {
      this.keep(key, auth);
    }
    return auth;
  }

  /** Verdicts kept now, past their time or not (for tests and diagnostics). */
  get kept(): number {
    return this.verdicts.size;
  }

  private keep(key: string, auth: SenderAuth): void {
    this.verdicts.delete(key);
    this.verdicts.set(key, { at: this.now(), auth: { ...auth } });
    this.sweep();
  }

  /**
   * Drops the verdicts past their time, and the oldest past MAX_VERDICTS: the map is in the
   * order they were kept, so this stops at the first one still good.
   */
  private sweep(): void {
    const oldest = this.now() - UNSIGNED_VERDICT_MS;
    for (const [key, kept] of this.verdicts) {
      if (kept.at > oldest && this.verdicts.size <= MAX_VERDICTS) return;
      this.verdicts.delete(key);
    }
  }

  /**
   * mailauth's judgement of `input` (the message, or its header block and an empty body: its
   * parser cost half a millisecond on a 100 KiB body), within the deadline and the lookup budget.
   */
  private async evaluateNow(
    input: Buffer | Readable,
    envelope: Envelope,
  ): Promise<SenderAuth> {
    const { authenticate } = await loadMailauth();
    const deadline = Date.now() + this.timeoutMs * EVALUATION_TIMEOUTS;
    const budget = budgeted(this.lookup, deadline);
    const running = authenticate(input, {
      ip: clientAddress(envelope.remoteAddress),
      helo: envelope.helo || undefined,
      sender: envelope.mailFrom ?? undefined,
      mta: this.mta,
      resolver: budget as never,
      disableBimi: true,
      // SPF gives up after one time limit: DMARC then still concludes from DKIM
      maxElapsedTime: this.timeoutMs,
    } as Parameters<typeof authenticate>[1]);
    try {
      const result = await withinTime(
        running,
        deadline - Date.now(),
        () => 'late' as const,
      );
      if (result === 'late') {
        // what is still running finds its lookups refused from now on (budgeted)
        running.catch(() => undefined);
        return { ...failed('temperror', 'temperror'), late: true };
      }
      return summarise(result);
    } catch (err) {
      // the file could not be read: a disk matter, judged again at the next attempt
      if ((err as { code?: unknown }).code) {
        return failed('temperror', 'temperror');
      }
      return failed('permerror', 'fail');
    } finally {
      if (!Buffer.isBuffer(input)) (input as Readable).destroy();
    }
  }
}

/**
 * `lookup` for one evaluation: at most MAX_LOOKUPS, none after `deadline` (an evaluation given
 * up on must not go on asking in the background).
 */
function budgeted(lookup: Lookup, deadline: number): Lookup {
  let left = MAX_LOOKUPS;
  return (name, rrtype) => {
    if (left-- <= 0 || Date.now() >= deadline) {
      return Promise.reject(
        Object.assign(new Error(`DNS lookup budget spent (${name})`), {
          code: 'ETIMEOUT',
        }),
      );
    }
    return lookup(name, rrtype);
  };
}

/**
 * What the verdict on an unsigned message depends on besides DNS: the client's address, HELO,
 * MAIL FROM and every From field as written (unfolded lines kept); undefined when that is over
 * 2 KiB (a stranger's giant From is judged each time, not kept).
 */
export function unsignedKey(
  /** the header block, as latin1 text */
  header: string,
  envelope: Envelope,
): string | undefined {
  const froms = header.match(/^from[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*/gim) ?? [];
  const key = JSON.stringify([
    clientAddress(envelope.remoteAddress) ?? '',
    envelope.helo ?? '',
    envelope.mailFrom ?? '',
    froms,
  ]);
  return key.length > MAX_KEY_CHARS ? undefined : key;
}

/** The signature fields of a header block (DKIM and ARC: those that cost lookups and hashes). */
export function countSignatures(header: Buffer | string): number {
  const text = typeof header === 'string' ? header : header.toString('latin1');
  return (
    text.match(
      /^(?:dkim-signature|arc-seal|arc-message-signature)[ \t]*:/gim,
    ) ?? []
  ).length;
}

function readable(raw: RawMessage): Buffer | Readable {
  if (Buffer.isBuffer(raw)) return raw;
  const start = raw.start ?? 0;
  return createReadStream(raw.path, {
    start,
    end: raw.length === undefined ? undefined : start + raw.length - 1,
  });
}

function hasTemperror(auth: SenderAuth): boolean {
  return [auth.spf, auth.dkim, auth.dmarc, auth.arc, auth.verdict].includes(
    'temperror',
  );
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

const CRLF = Buffer.from('\r\n');

/**
 * mailauth, loaded on the first judgement: it is the largest module of the daemon (about 12 MB
 * of heap and 40 MiB of RSS with its lists), and a main thread whose post thread judges every
 * message never needs it.
 */
let mailauth: Promise<typeof import('mailauth')> | undefined;
function loadMailauth(): Promise<typeof import('mailauth')> {
  mailauth ??= import('mailauth');
  return mailauth;
}
