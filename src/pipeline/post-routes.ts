// THE per-route step of every attempt, in every mode and on either thread: parse the message
// once, then for each route map its body and post it. What to post and how is the caller's.
import type { Readable } from 'node:stream';
import type { MappingConfig } from '../config/schema.js';
import type { Envelope } from '../mail/envelope.js';
import { messageIds, toApiPayload } from '../map/to-api-payload.js';
import type { ApiPayload } from '../map/api-payload.js';
import { parseMessage, type ParseOptions } from '../parse/parse-message.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import { idempotencyKey, mailboxKey } from './route-keys.js';

/** How one body is posted, and whether what came back means the API took it. */
export interface RoutePoster<R> {
  post(
    payload: ApiPayload,
    idempotencyKey: string,
    group: RouteGroup,
  ): Promise<R>;
  /** the answer of a route whose body could not be made or posted: a fault of ours */
  failed(err: unknown): R;
  took(answer: R): boolean;
}

/**
 * One route of an attempt: what its post came back with, or `duplicate` when an earlier route
 * of the same attempt took the same mailbox (it would have found that route's dedupe record).
 */
export type RouteAnswer<R> =
  { index: number; answer: R } | { index: number; duplicate: true };

/** What an attempt's routes came to, or the error that kept the message from being parsed. */
export type RoutesAnswer<R> =
  | { kind: 'posted'; routes: Array<RouteAnswer<R>>; messageId: string }
  | { kind: 'unparsed'; error: unknown };

export interface RoutesJob {
  envelope: Envelope;
  /** the routes to post, in order (those already delivered, or recorded, left out) */
  groups: RouteGroup[];
  mapping: MappingConfig;
}

/**
 * Parses `source` and posts every route of `job` through `poster`, in order. Never throws for a
 * failure: a route's failure is in its answer, a parse failure in `unparsed`. The attachment
 * files live for this attempt only: the next one parses the raw message again.
 */
export async function postRoutes<R>(
  source: string | Buffer | Readable,
  parse: ParseOptions,
  job: RoutesJob,
  poster: RoutePoster<R>,
): Promise<RoutesAnswer<R>> {
  let message;
  try {
    message = await parseMessage(source, parse);
  } catch (error) {
    return { kind: 'unparsed', error };
  }
  try {
    const routes: Array<RouteAnswer<R>> = [];
    /** the mailboxes the API has taken in this attempt */
    const taken = new Set<string>();
    for (const group of job.groups) {
      const mailbox = mailboxKey(group);
      if (taken.has(mailbox)) {
        routes.push({ index: group.index, duplicate: true });
        continue;
      }
      let answer: R;
      try {
        const payload = toApiPayload({
          message,
          envelope: job.envelope,
          group,
          mapping: job.mapping,
        });
        answer = await poster.post(
          payload,
          idempotencyKey(payload, group),
          group,
        );
      } catch (err) {
        // a fault of ours, not of the API: the route is tried again later
        answer = poster.failed(err);
      }
      routes.push({ index: group.index, answer });
      if (poster.took(answer)) taken.add(mailbox);
    }
    return { kind: 'posted', routes, messageId: messageIds(message).messageId };
  } finally {
    await message.dispose();
  }
}
