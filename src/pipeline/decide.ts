// THE decision point: what an attempt's per-route results make of a message. Pure: no I/O, no
// clock but the one given. Every lane (queue, hybrid, LMTP per-recipient replies) reads it.
import type { SenderAuth } from '../auth/verdict.js';
import type { RetryConfig } from '../config/schema.js';
import {
  BridgeError,
  isTemporary,
  TemporaryError,
} from '../errors/bridge-error.js';
import {
  HISTORY_LIMIT,
  type DeadInfo,
  type HeldInfo,
  type QueueEntry,
  type RouteState,
} from '../spool/queue-entry.js';
import { nextAttemptAt } from './backoff.js';

/**
 * What becomes of the message: removed (delivered), back to the queue (retry), dead, or held
 * (no route pending or failed, at least one held by its policy: kept in held/). `dropped`: like
 * delivered (removed), but every route was dropped by its policy: nothing was posted. A retry whose
 * failure says our own configuration is wrong (401/403/404) also pauses delivery:
 * `configError` is set, and the message waits without expiring.
 */
export type AttemptOutcome =
  'delivered' | 'dropped' | 'retry' | 'dead' | 'held';

/**
 * What one route of an attempt came to. `held`: a policy of the route held the message (an
 * auto-reply, failed sender authentication...), nothing was posted for that route; `reason`
 * says why, for `queue held` and the log. `dropped`: a policy of the route dropped the message;
 * nothing posted, the route done like a delivered one. A route marked `released` must never come
 * back held or dropped.
 */
export type RouteResult =
  | { index: number; outcome: 'duplicate' }
  /** `trimmed`: taken with these left out to fit the API; the raw message is then kept (held) */
  | { index: number; outcome: 'delivered'; trimmed?: string[] }
  | { index: number; outcome: 'failed'; failure: unknown }
  | { index: number; outcome: 'held' | 'dropped'; reason: string };

/** Why a message could not be parsed for its attempt (nothing was posted). */
export interface Unparsed {
  error: unknown;
  /** the raw message is gone from the spool: no later attempt can do better */
  rawMissing: boolean;
}

export interface AttemptResult {
  /** the entry's new state (attempts, history, route statuses, next attempt or dead info) */
  entry: QueueEntry;
  outcome: AttemptOutcome;
  /** the normalised Message-ID, when the message could be parsed */
  messageId?: string;
  /** a route failed with 401/403/404: our URL or token is wrong, delivery should pause */
  configError: boolean;
  /** each route's failure of this attempt, typed, by route index */
  failures?: ReadonlyMap<number, unknown>;
  /** the sender's judgement this attempt used (for its outcome line) */
  auth?: SenderAuth;
  /** the routes this attempt dropped: `route N: reason` each (the log line, the metric) */
  dropped?: string[];
}

/** What the decision needs besides the results: the clock, the policy, the jitter. */
export interface DecideContext {
  /** when the attempt started (its history line) */
  startedAt: number;
  now: number;
  retry: RetryConfig;
  random: () => number;
  messageId?: string;
}

/** The failure the sender hears of: the first temporary one (it retries), else the first. */
export function decisiveFailure(failures: unknown[]): unknown {
  return failures.find(isTemporary) ?? failures[0];
}

/**
 * The entry's next state after an attempt whose routes came to `results` (routes not among
 * them keep their status). Never mutates `entry`.
 */
export function decide(
  entry: QueueEntry,
  results: readonly RouteResult[],
  context: DecideContext,
): AttemptResult {
  const routes = entry.routes.map(r => ({ ...r }));
  const byIndex = new Map(routes.map(r => [r.index, r]));
  const texts: Record<string, string> = {};
  const failures = new Map<number, unknown>();
  let configError = false;
  let retryAt: number | undefined;
  let lastApi: BridgeError['api'];
  const dropped: string[] = [];
  for (const result of results) {
    const route = byIndex.get(result.index);
    if (!route) continue;
    if (result.outcome === 'dropped') {
      // done like a delivered route (never attempted again), the reason kept
      texts[route.index] = `dropped: ${result.reason}`;
      route.status = 'delivered';
      route.dropped = result.reason;
      route.lastError = undefined;
      route.api = undefined;
      dropped.push(`route ${route.index}: ${result.reason}`);
      continue;
    }
    if (result.outcome === 'held') {
      texts[route.index] = `held: ${result.reason}`;
      route.status = 'held';
      route.heldReason = result.reason;
      route.lastError = undefined;
      route.api = undefined;
      continue;
    }
    if (result.outcome !== 'failed') {
      const trimmed =
        result.outcome === 'delivered' ? result.trimmed : undefined;
      texts[route.index] = trimmed
        ? `delivered without ${trimmed.join(', ')}`
        : result.outcome;
      route.status = 'delivered';
      if (trimmed) route.trimmed = trimmed;
      route.lastError = undefined;
      route.api = undefined;
      continue;
    }
    const err = result.failure;
    failures.set(route.index, err);
    const text = err instanceof Error ? err.message : String(err);
    texts[route.index] = text;
    route.lastError = text;
    route.api = err instanceof BridgeError ? err.api : undefined;
    if (err instanceof BridgeError) lastApi = err.api ?? lastApi;
    if (!isTemporary(err)) route.status = 'failed';
    if (err instanceof TemporaryError) {
      configError ||= err.configError;
      if (err.retryAt !== undefined) {
        retryAt = Math.max(retryAt ?? 0, err.retryAt);
      }
    }
  }
  const result = conclude(entry, routes, texts, context, {
    retryAt,
    api: lastApi,
    configError,
  });
  return {
    ...result,
    messageId: context.messageId,
    configError,
    failures,
    ...(dropped.length ? { dropped } : {}),
  };
}

/**
 * The entry's next state when its message could not be parsed: unparseable bytes will not parse
 * better later, nor will a raw file that is gone; a disk error might.
 */
export function decideUnparsed(
  entry: QueueEntry,
  unparsed: Unparsed,
  context: DecideContext,
): AttemptResult {
  const routes = entry.routes.map(r => ({ ...r }));
  const texts: Record<string, string> = {};
  const permanent = unparsed.rawMissing || !isTemporary(unparsed.error);
  for (const route of routes.filter(r => r.status === 'pending')) {
    route.lastError = unparsed.rawMissing
      ? 'raw message missing from the spool'
      : permanent
        ? unparsedText(unparsed.error)
        : `local error: ${(unparsed.error as Error).message}`;
    if (permanent) route.status = 'failed';
    texts[route.index] = route.lastError;
  }
  return conclude(entry, routes, texts, context, {});
}

/** How the lastError of a message the parser refused begins. */
const UNPARSED = 'message could not be parsed';

/**
 * The route's lastError for a message the parser refused, keeping the parser's own words (the
 * error's message, without parse/parse-message.ts's prefix if it has one).
 */
function unparsedText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const detail = text.replace(/^message could not be parsed:?\s*/i, '');
  return detail ? `${UNPARSED}: ${detail}` : UNPARSED;
}

/**
 * Why a message whose routes are `routes` is held, since `at` (ISO time): the held routes'
 * reasons, each once, joined with '; '. Null when no route is held.
 */
export function heldInfo(
  routes: readonly RouteState[],
  at: string,
): HeldInfo | null {
  const reasons = routes.flatMap(r =>
    r.status === 'held'
      ? [r.heldReason ?? 'held']
      : r.trimmed
        ? [
            `body too large for the API, posted without: ${r.trimmed.join(', ')}`,
          ]
        : [],
  );
  if (reasons.length === 0) return null;
  return { reason: [...new Set(reasons)].join('; '), at };
}

/**
 * Decides the entry's fate from its routes: all delivered (or dropped: every one dropped), held
 * (none pending or failed, some held), some failed for good, or retry.
 */
function conclude(
  entry: QueueEntry,
  routes: RouteState[],
  texts: Record<string, string>,
  context: DecideContext,
  extra: { retryAt?: number; api?: BridgeError['api']; configError?: boolean },
): AttemptResult {
  const { now, retry } = context;
  const attempts = entry.attempts + 1;
  const lastError =
    routes
      .map(r => r.lastError)
      .filter(Boolean)
      .at(-1) ?? null;
  // a hold of an earlier attempt (its filing cut short) is decided again here
  const { held: _held, ...rest } = entry;
  const next: QueueEntry = {
    ...rest,
    routes,
    attempts,
    lastError,
    history: [
      ...entry.history,
      { at: new Date(context.startedAt).toISOString(), results: texts },
    ].slice(-HISTORY_LIMIT),
  };
  const pending = routes.some(r => r.status === 'pending');
  const failed = routes.some(r => r.status === 'failed');
  const base = { configError: false };
  if (!pending && !failed) {
    const held = heldInfo(routes, new Date(now).toISOString());
    if (held) return { ...base, entry: { ...next, held }, outcome: 'held' };
    const none = routes.every(r => r.dropped !== undefined);
    return { ...base, entry: next, outcome: none ? 'dropped' : 'delivered' };
  }
  // a 401/403/404 says our token or URL is wrong, not the message: it waits, it does not expire
  const expired = !extra.configError && now - entry.createdAt >= retry.maxAgeMs;
  if (!pending || expired) {
    // a route refused by an earlier attempt keeps what the API said then
    const api =
      extra.api ?? routes.filter(r => r.status === 'failed').at(-1)?.api;
    const age = Math.round((now - entry.createdAt) / 1000);
    const reason = pending
      ? `expired after ${attempts} attempts in ${age} s: ${lastError}`
      : `refused: ${lastError}`;
    const dead: DeadInfo = {
      reason,
      at: new Date(now).toISOString(),
      status: api?.status,
      apiErrors: api?.errors,
    };
    return { ...base, entry: { ...next, dead }, outcome: 'dead' };
  }
  return {
    ...base,
    entry: {
      ...next,
      nextAttemptAt: nextAttemptAt(
        now,
        attempts,
        retry,
        extra.retryAt,
        context.random,
      ),
    },
    outcome: 'retry',
  };
}
