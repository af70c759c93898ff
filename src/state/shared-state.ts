// The fleet's Redis (ioredis): one connection per process, every call bounded, and local state
// answering alone while Redis is unreachable or slow (logged once per outage, counted).
import { Redis, ReplyError } from 'ioredis';
import type { RedisConfig } from '../config/schema.js';
import { errorFields, type Logger } from '../observability/logger.js';

/** How often, while Redis is down, it is asked again whether it is back. */
const PROBE_INTERVAL_MS = 1000;
/** The first connection may take longer than a lookup: a start waits this long at most. */
const FIRST_CONNECT_MS = 3000;

/** What the process does with Redis's availability: a gauge and a counter (metrics.ts). */
export interface SharedStateObserver {
  /** Redis became usable (true) or not (false) */
  availability(up: boolean): void;
  /** an operation of `kind` was answered by local state alone */
  fallback(kind: string): void;
}

/** Redis as /status shows it. */
export interface SharedStateStatus {
  up: boolean;
  /** when it last became usable or unusable (ISO time) */
  since: string;
  /** operations answered by local state alone since the start */
  fallbacks: number;
  /** why Redis is not used even though it answers (a version before 7.0) */
  unsupported?: string;
}

/**
 * One process's connection to the fleet's Redis. `run()` gives each command of an operation
 * at most `timeoutMs`; an operation that fails or is late marks Redis down, after which every
 * operation is answered locally (undefined) without waiting, until a PING succeeds again.
 * Then the listeners of `onReturn()` push what was recorded locally meanwhile.
 */
export class SharedState {
  readonly redis: Redis;
  private up = false;
  private since = new Date();
  private fallbacks = 0;
  /** a down was logged, and the return is to be said */
  private outage = false;
  private probing?: NodeJS.Timeout;
  private closed = false;
  private readonly returns: Array<() => Promise<void>> = [];
  private first: Promise<boolean>;
  /** why this Redis is not used at all (a version before 7.0) */
  private unsupported?: string;
  /** refusals Redis gave (OOM, READONLY...), each logged once */
  private readonly refusals = new Set<string>();

  constructor(
    private readonly config: RedisConfig & { url: string },
    private readonly log: Logger,
    private readonly observer?: SharedStateObserver,
  ) {
    this.redis = new Redis(config.url, {
      // a command while disconnected fails at once (local state answers) instead of waiting
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: config.timeoutMs,
      connectTimeout: Math.max(config.timeoutMs, FIRST_CONNECT_MS),
      // reconnects for ever, at most a second apart
      retryStrategy: times => Math.min(times * 100, PROBE_INTERVAL_MS),
      lazyConnect: true,
    });
    // ioredis reports every failed reconnection: the outage is logged once by markDown()
    this.redis.on('error', err => this.markDown(err));
    this.redis.on('ready', () => void this.probe());
    this.first = this.redis.connect().then(
      () => this.probe(),
      err => {
        this.markDown(err);
        return false;
      },
    );
  }

  /** Whether operations go to Redis now. */
  get available(): boolean {
    return this.up;
  }

  /** Resolves once the first connection succeeded or failed (the start waits on it). */
  connected(): Promise<boolean> {
    return this.first;
  }

  /** A key of this fleet: the prefix, then the parts joined by ':'. */
  key(...parts: string[]): string {
    return this.config.prefix + parts.join(':');
  }

  /**
   * Runs `operation` on Redis, each of its commands within `timeoutMs`; undefined (counted under `kind`) when Redis is
   * down, or the operation failed or was late, which also marks Redis down.
   */
  async run<T>(
    kind: string,
    operation: (redis: Redis) => Promise<T>,
  ): Promise<T | undefined> {
    if (!this.up) {
      this.countFallback(kind);
      return undefined;
    }
    try {
      // ioredis bounds every command, those of a pipeline too (commandTimeout): no timer here
      return await operation(this.redis);
    } catch (err) {
      this.countFallback(kind);
      // Redis answered, with a refusal (out of memory, a read-only replica): it is up, but
      // this operation stays local; said once per kind of refusal
      if (err instanceof ReplyError) this.refused(err as Error);
      else this.markDown(err);
      return undefined;
    }
  }

  /** Called (once per return, in order) when Redis is usable again after an outage. */
  onReturn(listener: () => Promise<void>): void {
    this.returns.push(listener);
  }

  status(): SharedStateStatus {
    return {
      up: this.up,
      since: this.since.toISOString(),
      fallbacks: this.fallbacks,
      ...(this.unsupported ? { unsupported: this.unsupported } : {}),
    };
  }

  /** Closes the connection; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probing);
    await this.first.catch(() => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private countFallback(kind: string): void {
    this.fallbacks++;
    this.observer?.fallback(kind);
  }

  private refused(err: Error): void {
    const kind = err.message.split(' ')[0] ?? err.message;
    if (this.refusals.has(kind)) return;
    this.refusals.add(kind);
    this.log.warn(
      'redis refused an operation: it stays local (said once per kind of refusal)',
      errorFields(err),
    );
  }

  /** Redis unusable: said once per outage; a probe asks again every second. */
  private markDown(err: unknown): void {
    if (this.closed) return;
    if (this.up || !this.outage) {
      this.up = false;
      this.outage = true;
      this.since = new Date();
      this.observer?.availability(false);
      this.log.warn(
        'redis unreachable: dedupe records and client limits are local to this instance until it returns',
        errorFields(err),
      );
    }
    this.up = false;
    this.probing ??= setTimeout(() => {
      this.probing = undefined;
      void this.probe();
    }, PROBE_INTERVAL_MS);
    this.probing.unref();
  }

  /**
   * Asks Redis for its version (which answers like a PING): usable again (and caught up) when
   * it answers in time, and is 7.0 or later.
   */
  private async probe(): Promise<boolean> {
    if (this.closed || this.up || this.unsupported) return this.up;
    let version: string;
    try {
      // bounded by ioredis's commandTimeout, as every command
      version = redisVersion(await this.redis.info('server'));
    } catch (err) {
      this.markDown(err);
      return false;
    }
    if (!atLeast7(version)) {
      // said once (the connection's first probe and its 'ready' may both get here); no probe
      // comes after: an upgrade is a restart
      if (this.unsupported) return false;
      this.unsupported = `redis ${version} is older than 7.0, which the fleet needs (SET ... NX GET)`;
      this.log.error(
        `${this.unsupported}: this instance runs on its local records and limits alone`,
      );
      return false;
    }
    if (this.closed || this.up) return this.up;
    this.up = true;
    this.since = new Date();
    this.observer?.availability(true);
    const returned = this.outage;
    this.outage = false;
    if (returned) this.log.info('redis reachable again: catching up');
    else this.log.info('redis connected: state shared with the fleet');
    for (const listener of this.returns) {
      await listener().catch(err =>
        this.log.warn('redis catch-up failed', errorFields(err)),
      );
    }
    return true;
  }
}

/** The `redis_version` of an `INFO server` answer ('' when it has none). */
export function redisVersion(info: string): string {
  return /^redis_version:(\S+)/m.exec(info)?.[1] ?? '';
}

/** Whether a Redis version is 7.0 or later (an unreadable one is taken as such). */
export function atLeast7(version: string): boolean {
  const major = Number(version.split('.')[0]);
  return !Number.isFinite(major) || major === 0 || major >= 7;
}
