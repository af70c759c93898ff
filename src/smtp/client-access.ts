// Who may open a session, and how many: a client outside the allowed networks (`554 5.7.1`, the
// networks are config/networks.ts) and the limits per client address (`421 4.7.0`). Checked when
// a session starts, on the client's address (the one a PROXY header gives, when
// smtp.proxyProtocol trusts the peer).
import { isIP } from 'node:net';
import { clientAddress } from '../config/networks.js';

/** Why a session is refused, and the reply it gets. */
export interface Refusal {
  /** `limiter`: in a cluster, the primary that counts did not answer in time */
  reason: 'network' | 'connections' | 'rate' | 'logins' | 'limiter';
  responseCode: 421 | 554;
  /** the reply text, enhanced status code first (smtp-server adds none to a refused session) */
  message: string;
}

/**
 * The key a client's sessions and failed logins are counted under: its IPv4 address, or the
 * /64 network of an IPv6 one (one subscriber's: a host there has 2^64 addresses to pick from,
 * so counting each address alone would limit nothing).
 */
export function clientKey(raw: string): string {
  const address = clientAddress(raw);
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address);
  if (!groups) return address;
  // IPv4-mapped, written in hex (::ffff:c000:201), or an IPv4 client translated by NAT64's
  // well-known prefix 64:ff9b::/96 (RFC 6052): the IPv4 client it is
  const mapped = groups.slice(0, 5).every(g => g === 0) && groups[5] === 0xffff;
  const nat64 =
    groups[0] === 0x64 &&
    groups[1] === 0xff9b &&
    groups.slice(2, 6).every(g => g === 0);
  if (mapped || nat64) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  const prefix = groups.slice(0, 4).map(g => g.toString(16));
  // in the usual compressed form: trailing zero groups of the prefix become '::'
  while (prefix.length > 0 && prefix.at(-1) === '0') prefix.pop();
  return `${prefix.join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted IPv4 part included). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.split('%')[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const part = (s: string) => (s ? s.split(':').map(h => parseInt(h, 16)) : []);
  const front = part(head);
  const back = tail === undefined ? [] : part(tail);
  const missing = 8 - front.length - back.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  const groups = [...front, ...Array<number>(missing).fill(0), ...back];
  return groups.every(g => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : undefined;
}

export interface ClientLimits {
  /** sessions open at once per client address */
  maxConnections: number;
  /** sessions started per client address in any 60 s; 0 for no limit */
  perMinute: number;
}

const MINUTE_MS = 60_000;

/**
 * Failed logins (SMTP AUTH) from one client address within this long, at most: past them its
 * new sessions are refused until the oldest failure is this old.
 */
export const LOGIN_FAILURES_PER_CLIENT = 10;
export const LOGIN_FAILURE_WINDOW_MS = 10 * MINUTE_MS;

/** What is known of one client address: its open sessions and when its recent ones started. */
interface Client {
  open: number;
  /** start times within the last minute, oldest first (only kept with a rate limit) */
  starts: number[];
  /** times of failed logins within the failure window, oldest first */
  failures: number[];
}

/**
 * Where the sessions and failed logins of each client address are counted: in this process
 * (ClientLimiter), or, in a cluster, by the primary for all workers (shared-limiter.ts).
 */
export interface ClientCounter {
  /** Counts a session that starts, or says why it may not. */
  open(address: string): Refusal | undefined | Promise<Refusal | undefined>;
  /** Gives back a session `open()` counted. */
  close(address: string): void;
  /** Counts a failed login; true when the client has now failed too often. */
  loginFailed(address: string): boolean | Promise<boolean>;
}

/**
 * Counts the sessions and failed logins of each client address. `open()` counts a session that
 * starts, or says why it may not; `close()` gives back a session `open()` counted;
 * `loginFailed()` counts a failed login. Memory stays bounded by the clients of the last
 * minute, and those with failed logins in the last ten.
 */
export class ClientLimiter implements ClientCounter {
  private readonly clients = new Map<string, Client>();
  private sweptAt: number;

  constructor(
    private readonly limits: ClientLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.sweptAt = now();
  }

  /** Clients known (for tests: forgotten ones do not stay). */
  get size(): number {
    return this.clients.size;
  }

  open(address: string): Refusal | undefined {
    const now = this.now();
    if (now - this.sweptAt >= MINUTE_MS) this.sweep(now);
    const key = clientKey(address);
    const client = this.clients.get(key) ?? {
      open: 0,
      starts: [],
      failures: [],
    };
    if (this.tooManyFailures(client, now)) return limitRefusal('logins', key);
    if (client.open >= this.limits.maxConnections) {
      return limitRefusal('connections', key);
    }
    if (this.limits.perMinute > 0) {
      dropBefore(client.starts, now - MINUTE_MS);
      if (client.starts.length >= this.limits.perMinute) {
        return limitRefusal('rate', key);
      }
      client.starts.push(now);
    }
    client.open++;
    this.clients.set(key, client);
    return undefined;
  }

  close(address: string): void {
    this.giveBack(address, false);
  }

  /**
   * Undoes an `open()` whose session never ran (in a cluster: one its worker had refused when
   * the answer came late): the session and its start, so it does not count against the rate.
   * The newest start goes; the count is what matters.
   */
  cancel(address: string): void {
    this.giveBack(address, true);
  }

  private giveBack(address: string, start: boolean): void {
    const key = clientKey(address);
    const client = this.clients.get(key);
    if (!client) return;
    client.open = Math.max(0, client.open - 1);
    if (start) client.starts.pop();
    if (idle(client)) this.clients.delete(key);
  }

  /**
   * Counts a failed login of `address`; true when the client has now failed too often (its
   * session should be closed, and its new ones are refused for a while).
   */
  loginFailed(address: string): boolean {
    const now = this.now();
    const key = clientKey(address);
    const client = this.clients.get(key) ?? {
      open: 0,
      starts: [],
      failures: [],
    };
    client.failures.push(now);
    if (client.failures.length > LOGIN_FAILURES_PER_CLIENT) {
      client.failures.shift();
    }
    this.clients.set(key, client);
    return this.tooManyFailures(client, now);
  }

  private tooManyFailures(client: Client, now: number): boolean {
    dropBefore(client.failures, now - LOGIN_FAILURE_WINDOW_MS);
    return client.failures.length >= LOGIN_FAILURES_PER_CLIENT;
  }

  /** Forgets the clients with no open session and no start within the last minute. */
  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [key, client] of this.clients) {
      dropBefore(client.starts, now - MINUTE_MS);
      dropBefore(client.failures, now - LOGIN_FAILURE_WINDOW_MS);
      if (idle(client)) this.clients.delete(key);
    }
  }
}

/** Nothing to remember of a client: no open session, no recent start or failed login. */
function idle(client: Client): boolean {
  return (
    client.open === 0 &&
    client.starts.length === 0 &&
    client.failures.length === 0
  );
}

/** Removes the times before `limit` from the front of an ascending list. */
function dropBefore(times: number[], limit: number): void {
  let stale = 0;
  while (stale < times.length && times[stale]! <= limit) stale++;
  if (stale > 0) times.splice(0, stale);
}

/** A per-client limit reached, whoever counted it (this process, a primary, the fleet). */
export type LimitReason = 'logins' | 'connections' | 'rate';

/** The refusal of a client (its key, clientKey()) over one of its limits. */
export function limitRefusal(reason: LimitReason, key: string): Refusal {
  const why =
    reason === 'logins'
      ? `Too many failed logins from ${key}`
      : reason === 'connections'
        ? `Too many connections from ${key}`
        : `Too many connections from ${key} in the last minute`;
  return {
    reason,
    responseCode: 421,
    message: `4.7.0 ${why}, try again later`,
  };
}

/** The refusal of a client outside the allowed networks. */
export function networkRefusal(address: string): Refusal {
  return {
    reason: 'network',
    responseCode: 554,
    message: `5.7.1 Access denied: ${clientAddress(address)} is not in the allowed networks`,
  };
}
