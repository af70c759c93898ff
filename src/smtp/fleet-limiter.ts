// Per-client limits across a fleet: each session and failed login is counted in the fleet's
// Redis as well as locally (this process, or a cluster's primary). The fleet's count refuses
// first while Redis answers; the local count is what holds while it does not.
import { randomUUID } from 'node:crypto';
import type { SharedState } from '../state/shared-state.js';
import {
  clientKey,
  limitRefusal,
  LOGIN_FAILURE_WINDOW_MS,
  LOGIN_FAILURES_PER_CLIENT,
  type ClientCounter,
  type ClientLimits,
  type LimitReason,
  type Refusal,
} from './client-access.js';

/**
 * One session's start, checked and counted at once, on Redis's clock (the instances' clocks
 * may differ). Sorted sets per client: open sessions scored by when they expire (a session
 * never outlives smtp.sessionTimeoutMs, so an instance that dies leaves nothing for longer),
 * starts of the last minute, failed logins of the window. Every key expires.
 * KEYS: sessions, starts, failures. ARGV: member, maxConnections, perMinute, sessionMs,
 * loginMax, loginWindowMs.
 */
const OPEN_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[6]))
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return 'logins' end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'connections' end
if tonumber(ARGV[3]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'rate' end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], 60000)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 'ok'`;

/** A failed login counted; 1 when the client has now failed too often. KEYS: failures. */
const LOGIN_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 1 end
return 0`;

export interface FleetLimiterOptions {
  limits: ClientLimits;
  /** smtp.sessionTimeoutMs: no session lasts longer, so its count expires after it */
  sessionMs: number;
}

/** The fleet's count over a local one (ClientLimiter, or a cluster worker's WorkerLimiter). */
export class FleetLimiter implements ClientCounter {
  private readonly owner = randomUUID();
  private next = 0;
  /** client key -> the members this process added to its sessions set */
  private readonly members = new Map<string, string[]>();

  constructor(
    private readonly local: ClientCounter,
    private readonly shared: SharedState,
    private readonly options: FleetLimiterOptions,
  ) {}

  async open(address: string): Promise<Refusal | undefined> {
    const key = clientKey(address);
    const member = `${this.owner}:${this.next++}`;
    const { limits, sessionMs } = this.options;
    const fleet = await this.shared.run('limits', redis =>
      redis.eval(
        OPEN_SCRIPT,
        3,
        this.redisKey(key, 'sessions'),
        this.redisKey(key, 'starts'),
        this.redisKey(key, 'failures'),
        member,
        limits.maxConnections,
        limits.perMinute,
        sessionMs,
        LOGIN_FAILURES_PER_CLIENT,
        LOGIN_FAILURE_WINDOW_MS,
      ),
    );
    if (fleet !== undefined && fleet !== 'ok') {
      return limitRefusal(fleet as LimitReason, key);
    }
    const refusal = await this.local.open(address);
    if (fleet === 'ok') {
      if (refusal) this.forget(key, member, true);
      else this.members.set(key, [...(this.members.get(key) ?? []), member]);
    }
    return refusal;
  }

  /**
   * Gives a session back. Sessions of one client are told apart by nothing but their address,
   * so any one of the members this process added for it goes: exact while Redis stayed up. A
   * session opened during an outage (no member) that ends after one opened since may take that
   * one's member: the fleet then counts one session too few until both end.
   */
  close(address: string): void {
    this.local.close(address);
    const key = clientKey(address);
    const members = this.members.get(key);
    const member = members?.pop();
    if (members?.length === 0) this.members.delete(key);
    if (member !== undefined) this.forget(key, member, false);
  }

  async loginFailed(address: string): Promise<boolean> {
    const key = clientKey(address);
    const local = await this.local.loginFailed(address);
    const fleet = await this.shared.run('limits', redis =>
      redis.eval(
        LOGIN_SCRIPT,
        1,
        this.redisKey(key, 'failures'),
        `${this.owner}:${this.next++}`,
        LOGIN_FAILURES_PER_CLIENT,
        LOGIN_FAILURE_WINDOW_MS,
      ),
    );
    return local || fleet === 1;
  }

  /** `<prefix>client:{<client key>}:<what>`: one client's keys in one Redis Cluster slot. */
  private redisKey(key: string, what: string): string {
    return this.shared.key('client', `{${key}}`, what);
  }

  /** Takes a session out of the fleet's count (and its start, when it never ran). */
  private forget(key: string, member: string, start: boolean): void {
    void this.shared.run('limits', redis => {
      const pipeline = redis.pipeline();
      pipeline.zrem(this.redisKey(key, 'sessions'), member);
      if (start) pipeline.zrem(this.redisKey(key, 'starts'), member);
      return pipeline.exec();
    });
  }
}
