// One attempt at some routes of a message, in every mode: skip those already delivered (their
// dedupe records), post the others through the one per-route step (post-routes.ts) on this
// thread or on the post thread, and record what the API took.
import type { SenderAuthenticator } from '../auth/sender-auth.js';
import type { SenderAuth } from '../auth/verdict.js';
import type { MappingConfig } from '../config/schema.js';
import { TemporaryError } from '../errors/bridge-error.js';
import type { Envelope } from '../mail/envelope.js';
import type { ParseOptions } from '../parse/parse-message.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import type { DedupeRecords } from '../dedupe/dedupe-records.js';
import type { JobResult, PayloadSink, RawFile } from './payload-sink.js';
import type { RouteResult } from './decide.js';
import { postRoutes, type RoutePoster } from './post-routes.js';
import { applyRoutePolicy } from './route-policy.js';
import { dedupeKey, type MessageKeys } from './route-keys.js';

export interface AttemptInput {
  /** the raw message: its bytes (which may be handed over to the post thread), or its file */
  source: string | Buffer;
  /** where in `source` the message lies, and where its attachment files go */
  parse: ParseOptions;
  envelope: Envelope;
  /** the routes to attempt, in order */
  groups: RouteGroup[];
  /** what the message is recognised by (found at accept time) */
  keys: MessageKeys;
  /** the message's size in bytes, when known */
  size?: number;
  /** the sender's judgement when made already (at the end of DATA, or by an earlier attempt) */
  auth?: SenderAuth;
}

export interface AttemptRoutesDeps {
  mapping: MappingConfig;
  sink: PayloadSink;
  /** without one (tools), every route is posted and nothing recorded */
  dedupe?: DedupeRecords;
  /** without one (tools), senders are not judged: every route posts as mapped */
  senderAuth?: SenderAuthenticator;
}

/** The routes' results, or why the message could not be parsed (nothing was posted). */
export type RoutesOutcome = (
  | { kind: 'posted'; routes: RouteResult[]; messageId?: string }
  | { kind: 'unparsed'; error: unknown }
) & {
  /** the sender's judgement, when a route asked for one (input.auth, or made now) */
  auth?: SenderAuth;
};

/**
 * Attempts `input.groups`. Never throws for a delivery failure (a route's failure is in its
 * result); a dedupe store that cannot be read throws, and the caller retries the message.
 */
export async function attemptRoutes(
  input: AttemptInput,
  deps: AttemptRoutesDeps,
): Promise<RoutesOutcome> {
  const results: RouteResult[] = [];
  /** the routes to post, by index, with their dedupe keys */
  const toPost = new Map<number, { group: RouteGroup; key?: string }>();
  for (const group of input.groups) {
    const key = deps.dedupe ? dedupeKey(input.keys, group) : undefined;
    // two routes to one mailbox share a key: claimed once, post-routes.ts posts it once
    const mine = [...toPost.values()].some(p => p.key === key);
    const claim = key && !mine ? await deps.dedupe!.claim(key) : 'new';
    if (claim === 'duplicate') {
      results.push({ index: group.index, outcome: 'duplicate' });
    } else if (claim === 'busy') {
      // another instance of the fleet posts it now: its record decides the next attempt
      const failure = new TemporaryError(
        'being posted by another instance of the fleet',
      );
      results.push({ index: group.index, outcome: 'failed', failure });
    } else toPost.set(group.index, { group, key });
  }
  if (toPost.size === 0) return { kind: 'posted', routes: sorted(results) };
  /** claimed keys not (yet) recorded as delivered: given back when the attempt ends */
  const claimed = new Set(
    [...toPost.values()].flatMap(p => (p.key ? [p.key] : [])),
  );
  try {
    return await postClaimed(input, deps, toPost, results, claimed);
  } finally {
    for (const key of claimed) {
      await deps.dedupe!.release(key).catch(() => undefined);
    }
  }
}

/** Posts the claimed routes and records what the API took (attemptRoutes' second half). */
async function postClaimed(
  input: AttemptInput,
  deps: AttemptRoutesDeps,
  toPost: Map<number, { group: RouteGroup; key?: string }>,
  results: RouteResult[],
  claimed: Set<string>,
): Promise<RoutesOutcome> {
  const posted = await post(
    input,
    [...toPost.values()].map(p => p.group),
    deps,
  );
  // a judgement the post thread made is counted here, once
  if (posted.judged && posted.auth) deps.senderAuth?.count(posted.auth);
  const auth = posted.auth;
  if (posted.kind === 'unparsed') return { ...posted, auth };
  for (const route of posted.routes) {
    if (route.duplicate) {
      results.push({ index: route.index, outcome: 'duplicate' });
      continue;
    }
    if (route.held !== undefined) {
      results.push({ index: route.index, outcome: 'held', reason: route.held });
      continue;
    }
    if (route.dropped !== undefined) {
      const reason = route.dropped;
      results.push({ index: route.index, outcome: 'dropped', reason });
      continue;
    }
    if (route.failure !== undefined) {
      results.push({
        index: route.index,
        outcome: 'failed',
        failure: route.failure,
      });
      continue;
    }
    // recorded before the spool is updated: a crash in between cannot post it twice. A record
    // that cannot be written costs at most one duplicate post later; failing the attempt here
    // would forget that this route was delivered and post it again for sure.
    const key = toPost.get(route.index)?.key;
    if (key) {
      claimed.delete(key);
      await deps.dedupe!.add(key).catch(() => undefined);
    }
    results.push(
      route.trimmed
        ? { index: route.index, outcome: 'delivered', trimmed: route.trimmed }
        : { index: route.index, outcome: 'delivered' },
    );
  }
  return {
    kind: 'posted',
    routes: sorted(results),
    messageId: posted.messageId,
    auth,
  };
}

/** The message's own bytes in `input.source`, or where in its file they lie. */
function rawOf(input: AttemptInput): Buffer | RawFile {
  const { source } = input;
  const { start = 0, length } = input.parse;
  return Buffer.isBuffer(source)
    ? source.subarray(start, start + (length ?? source.length - start))
    : { path: source, start, length };
}

function sorted(results: RouteResult[]): RouteResult[] {
  return results.sort((a, b) => a.index - b.index);
}

/**
 * Posts `groups`: as a job on the post thread when the sink has a usable one (bytes in memory
 * are then handed over; a file is read there), else here, through the sink.
 */
async function post(
  input: AttemptInput,
  groups: RouteGroup[],
  deps: AttemptRoutesDeps,
): Promise<JobResult> {
  const { source, envelope } = input;
  if (deps.sink.deliverJob) {
    const running = deps.sink.deliverJob(
      {
        raw: rawOf(input),
        attachmentDir: input.parse.attachmentDir,
        envelope,
        groups,
        size: input.size,
        auth: input.auth,
      },
      envelope.id,
    );
    if (running) return running;
  }
  // here: each route's policies (noise; the sender judged if a route asks), then the per-route step
  const policy = await applyRoutePolicy(groups, {
    raw: rawOf(input),
    envelope,
    known: input.auth,
    authenticator: deps.senderAuth,
  });
  const decided = [
    ...policy.held.map(h => ({ index: h.index, held: h.reason })),
    ...policy.dropped.map(d => ({ index: d.index, dropped: d.reason })),
    ...policy.deferred.map(d => ({
      index: d.index,
      failure: new TemporaryError(d.reason),
    })),
  ];
  // judged here: evaluate() has counted it already
  const judgement = { auth: policy.auth };
  if (policy.post.length === 0) {
    return { kind: 'posted', routes: decided, ...judgement };
  }
  const answer = await postRoutes(
    source,
    input.parse,
    { envelope, groups: policy.post, mapping: deps.mapping },
    sinkPoster(deps.sink, envelope.id),
  );
  if (answer.kind === 'unparsed') return { ...answer, ...judgement };
  return {
    kind: 'posted',
    messageId: answer.messageId,
    routes: [
      ...decided,
      ...answer.routes.map(r =>
        'duplicate' in r
          ? { index: r.index, duplicate: true }
          : {
              index: r.index,
              failure: r.answer.failure,
              trimmed: r.answer.trimmed,
            },
      ),
    ],
    ...judgement,
  };
}

/**
 * Posts on this thread through the sink: a route's answer is its failure, if any, and what the
 * sink left out to fit the API.
 */
function sinkPoster(
  sink: PayloadSink,
  queueId: string,
): RoutePoster<{ failure?: unknown; trimmed?: string[] }> {
  return {
    async post(payload, idempotencyKey, group) {
      try {
        const receipt = await sink.send(payload, {
          idempotencyKey,
          queueId,
          routeIndex: group.index,
        });
        return receipt?.leftOut ? { trimmed: receipt.leftOut } : {};
      } catch (failure) {
        return { failure };
      }
    },
    failed: failure => ({ failure }),
    took: answer => answer.failure === undefined,
  };
}
