// One delivery attempt of a spooled message: parse once, then map and post each pending route.
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import {
  BridgeError,
  isTemporary,
  TemporaryError,
} from '../errors/bridge-error.js';
import { messageIds, toApiPayload } from '../map/to-api-payload.js';
import { parseMessage } from '../parse/parse-message.js';
import type { ParsedMessage } from '../parse/parsed-message.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import { DedupeStore } from '../spool/dedupe-store.js';
import { exists } from '../spool/durable-fs.js';
import {
  HISTORY_LIMIT,
  type DeadInfo,
  type QueueEntry,
  type RouteState,
} from '../spool/queue-entry.js';
import { nextAttemptAt } from './backoff.js';
import { idempotencyKey, mailboxKey } from './deliver-message.js';
import type { PayloadSink } from './payload-sink.js';

/** What becomes of the message: removed (delivered), back to the queue, or dead. */
export type AttemptOutcome = 'delivered' | 'retry' | 'dead';

export interface AttemptResult {
  /** the entry's new state (attempts, history, route statuses, next attempt or dead info) */
  entry: QueueEntry;
  outcome: AttemptOutcome;
  /** the normalised Message-ID, when the message could be parsed */
  messageId?: string;
  /** a route failed with 401/403/404: our URL or token is wrong, delivery should pause */
  configError: boolean;
}

export interface AttemptDeps {
  config: Pick<Config, 'mapping' | 'delivery'>;
  sink: PayloadSink;
  dedupe: DedupeStore;
  now: () => number;
  random: () => number;
  /**
   * Where the attachments are written while the attempt runs. By default the spool's tmp/ when
   * the raw message is a spool's `msg/<id>.eml` (recovery clears tmp/ after a crash), else
   * os.tmpdir().
   */
  attachmentDir?: string;
}

/** The spool's tmp/ folder for a raw message at `<spool>/msg/<id>.eml`. */
function spoolTmpDir(rawPath: string): string | undefined {
  const folder = dirname(rawPath);
  return basename(folder) === 'msg' ? join(dirname(folder), 'tmp') : undefined;
}

/** What one route's post came to. */
interface RouteOutcome {
  text: string;
  failure?: BridgeError | Error;
}

/**
 * Attempts every pending route of `entry`, whose raw message is at `rawPath` (from byte
 * `entry.rawOffset` on), or in `raw` when the caller still has its bytes (they may be handed
 * over to the post thread: the caller must not use them after). Never throws for a delivery
 * failure: the result says whether to remove, retry or bury the message.
 */
export async function attemptDelivery(
  entry: QueueEntry,
  rawPath: string,
  deps: AttemptDeps,
  raw?: Buffer,
): Promise<AttemptResult> {
  const startedAt = deps.now();
  // a message in memory (a small one, fresh) is attempted on the post thread if the sink has
  // one; one read from its file (a large one, or a retry) here, where streaming a large
  // attachment is measured to stay within its bounds
  if (raw && entry.messageId && deps.sink.deliverJob) {
    const done = await attemptElsewhere(
      entry,
      entry.messageId,
      rawPath,
      deps,
      raw,
      startedAt,
    );
    if (done !== 'declined' && done !== 'other-id') return done;
    // another Message-ID than the one found at accept time: attempted here, by the parsed one
    // (nothing was posted); its bytes, handed over, are read from the file
    if (done === 'other-id') raw = undefined;
  }
  const routes = entry.routes.map(r => ({ ...r }));
  let message;
  try {
    message = await parseMessage(raw ?? rawPath, {
      attachmentDir: attachmentDirOf(rawPath, deps),
      start: raw ? undefined : entry.rawOffset,
      length: raw ? undefined : entry.rawLength,
    });
  } catch (err) {
    return unparsed(entry, routes, rawPath, err, deps, startedAt);
  }
  try {
    const messageId = messageIds(message).messageId;
    const tally = new Tally();
    for (const route of routes.filter(r => r.status === 'pending')) {
      const key = DedupeStore.key(
        messageId,
        mailboxKey(route),
        entry.fingerprint,
      );
      const outcome = (await deps.dedupe.has(key))
        ? { text: 'duplicate' }
        : await postRoute(entry, route, message, deps, key);
      tally.settle(route, outcome);
    }
    return tally.conclude(entry, routes, messageId, deps, startedAt);
  } finally {
    // the attachment files live for one attempt: the next one parses the raw message again
    await message.dispose();
  }
}

/**
 * The attempt as a delivery job on the post thread (delivery-job.ts): the routes already
 * delivered under the Message-ID found at accept time are left out, the others parsed, mapped
 * and posted there, and the answers judged here. 'declined' when the sink takes no job (nothing
 * happened), 'other-id' when the parsed message has another Message-ID (nothing was posted).
 */
async function attemptElsewhere(
  entry: QueueEntry,
  messageId: string,
  rawPath: string,
  deps: AttemptDeps,
  raw: Buffer,
  startedAt: number,
): Promise<AttemptResult | 'declined' | 'other-id'> {
  const routes = entry.routes.map(r => ({ ...r }));
  const tally = new Tally();
  /** the routes to post, by index, with their dedupe keys */
  const toPost = new Map<number, { route: RouteState; key: string }>();
  for (const route of routes.filter(r => r.status === 'pending')) {
    const key = DedupeStore.key(
      messageId,
      mailboxKey(route),
      entry.fingerprint,
    );
    if (await deps.dedupe.has(key)) tally.settle(route, { text: 'duplicate' });
    else toPost.set(route.index, { route, key });
  }
  if (toPost.size > 0) {
    const running = deps.sink.deliverJob!(
      {
        raw,
        attachmentDir: attachmentDirOf(rawPath, deps),
        envelope: entry.envelope,
        groups: [...toPost.values()].map(p => groupOf(p.route)),
        messageId,
      },
      entry.id,
    );
    if (!running) return 'declined';
    const answer = await running;
    if (answer.kind === 'other-id') return 'other-id';
    if (answer.kind === 'unparsed') {
      const fresh = entry.routes.map(r => ({ ...r }));
      return unparsed(entry, fresh, rawPath, answer.error, deps, startedAt);
    }
    for (const { index, failure, duplicate } of answer.routes) {
      const { route, key } = toPost.get(index)!;
      if (duplicate) {
        tally.settle(route, { text: 'duplicate' });
        continue;
      }
      if (!failure) {
        // recorded before the spool is updated (see postRoute)
        await deps.dedupe.add(key).catch(() => undefined);
      }
      tally.settle(
        route,
        failure ? { text: failure.message, failure } : { text: 'delivered' },
      );
    }
  }
  return tally.conclude(entry, routes, messageId, deps, startedAt);
}

/**
 * The attempt when the raw message could not be parsed: unparseable bytes will not parse better
 * later, nor will a raw file that is gone; a disk error might (checked on the raw file itself:
 * an ENOENT from the attachment folder is a disk matter).
 */
async function unparsed(
  entry: QueueEntry,
  routes: RouteState[],
  rawPath: string,
  err: unknown,
  deps: AttemptDeps,
  startedAt: number,
): Promise<AttemptResult> {
  const results: Record<string, string> = {};
  const missing = !(await exists(rawPath));
  const permanent = missing || !isTemporary(err);
  for (const route of routes.filter(r => r.status === 'pending')) {
    route.lastError = missing
      ? 'raw message missing from the spool'
      : permanent
        ? 'message could not be parsed'
        : `local error: ${(err as Error).message}`;
    if (permanent) route.status = 'failed';
    results[route.index] = route.lastError;
  }
  return conclude(entry, routes, results, deps, startedAt, {});
}

function attachmentDirOf(
  rawPath: string,
  deps: AttemptDeps,
): string | undefined {
  return deps.attachmentDir ?? spoolTmpDir(rawPath);
}

function groupOf(route: RouteState): RouteGroup {
  return {
    route: route.route,
    index: route.index,
    recipients: route.recipients,
    threadId: route.threadId,
  };
}

/** The routes' outcomes of one attempt, as they come: their texts and what the failures say. */
class Tally {
  readonly results: Record<string, string> = {};
  private configError = false;
  private retryAt: number | undefined;
  private lastApi: BridgeError['api'];

  /** Updates `route` (in place) with what its post came to. */
  settle(route: RouteState, outcome: RouteOutcome): void {
    this.results[route.index] = outcome.text;
    if (!outcome.failure) {
      route.status = 'delivered';
      route.lastError = undefined;
      route.api = undefined;
      return;
    }
    route.lastError = outcome.text;
    const err = outcome.failure;
    route.api = err instanceof BridgeError ? err.api : undefined;
    if (err instanceof BridgeError) this.lastApi = err.api ?? this.lastApi;
    if (!isTemporary(err)) route.status = 'failed';
    if (err instanceof TemporaryError) {
      this.configError ||= err.configError;
      if (err.retryAt !== undefined) {
        this.retryAt = Math.max(this.retryAt ?? 0, err.retryAt);
      }
    }
  }

  conclude(
    entry: QueueEntry,
    routes: RouteState[],
    messageId: string,
    deps: AttemptDeps,
    startedAt: number,
  ): AttemptResult {
    const result = conclude(entry, routes, this.results, deps, startedAt, {
      retryAt: this.retryAt,
      api: this.lastApi,
      configError: this.configError,
    });
    return { ...result, messageId, configError: this.configError };
  }
}

async function postRoute(
  entry: QueueEntry,
  route: RouteState,
  message: ParsedMessage,
  deps: AttemptDeps,
  dedupeKey: string,
): Promise<RouteOutcome> {
  const group = groupOf(route);
  const payload = toApiPayload({
    message,
    envelope: entry.envelope,
    group,
    mapping: deps.config.mapping,
  });
  try {
    await deps.sink.send(payload, {
      idempotencyKey: idempotencyKey(payload, group),
      queueId: entry.id,
      routeIndex: route.index,
    });
  } catch (err) {
    return { text: (err as Error).message, failure: err as Error };
  }
  // recorded before the spool is updated: a crash in between cannot post it twice. A record
  // that cannot be written costs at most one duplicate post later; failing the attempt here
  // would forget that this route was delivered and post it again for sure.
  await deps.dedupe.add(dedupeKey).catch(() => undefined);
  return { text: 'delivered' };
}

/** Decides the entry's fate from its routes: all delivered, some failed for good, or retry. */
function conclude(
  entry: QueueEntry,
  routes: RouteState[],
  results: Record<string, string>,
  deps: AttemptDeps,
  startedAt: number,
  extra: { retryAt?: number; api?: BridgeError['api']; configError?: boolean },
): AttemptResult {
  const now = deps.now();
  const attempts = entry.attempts + 1;
  const lastError =
    routes
      .map(r => r.lastError)
      .filter(Boolean)
      .at(-1) ?? null;
  const next: QueueEntry = {
    ...entry,
    routes,
    attempts,
    lastError,
    history: [
      ...entry.history,
      { at: new Date(startedAt).toISOString(), results },
    ].slice(-HISTORY_LIMIT),
  };
  const pending = routes.some(r => r.status === 'pending');
  const failed = routes.some(r => r.status === 'failed');
  const base = { configError: false };
  if (!pending && !failed) {
    return { ...base, entry: next, outcome: 'delivered' };
  }
  const retry = deps.config.delivery.retry;
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
        deps.random,
      ),
    },
    outcome: 'retry',
  };
}
