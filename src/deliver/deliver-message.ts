// parse -> map -> post for one message: the same steps in sync mode and, later, in a queue worker.
import { hash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Envelope } from '../envelope.js';
import { isTemporary, PermanentError } from '../errors/bridge-error.js';
import type { ApiPayload } from '../map/api-payload.js';
import { messageIds, toApiPayload } from '../map/to-api-payload.js';
import type { ParsedMessage } from '../parse/parsed-message.js';
import { groupByRoute, type RouteGroup } from '../routing/resolve-route.js';
import { DedupeStore } from '../spool/dedupe-store.js';
import type { PayloadSink } from './payload-sink.js';

/** Every body a message gives, one per route group, with its idempotency key. */
export function buildPayloads(
  message: ParsedMessage,
  envelope: Envelope,
  config: Pick<Config, 'routes' | 'mapping'>,
): Array<{ group: RouteGroup; payload: ApiPayload; idempotencyKey: string }> {
  const groups = groupByRoute(envelope.rcptTo, config.routes);
  if (groups.length === 0) {
    throw new PermanentError('No recipient of this message has a route', {
      responseCode: 550,
    });
  }
  return groups.map(group => {
    const payload = toApiPayload({
      message,
      envelope,
      group,
      mapping: config.mapping,
    });
    return { group, payload, idempotencyKey: idempotencyKey(payload, group) };
  });
}

/** Same message id and route -> same key, so a retried POST can be recognised by the API. */
export function idempotencyKey(payload: ApiPayload, group: RouteGroup): string {
  return hash(
    'sha256',
    `${payload.ext_msg_id}\n${group.route.match}\n${group.route.mailbox_id ?? ''}`,
    'hex',
  );
}

/**
 * The key a route is deduplicated under: its mailbox, or its pattern when it has none. Sync
 * mode and the queue workers share it, so either one knows what the other delivered.
 */
export function mailboxKey(group: Pick<RouteGroup, 'route'>): string {
  return group.route.mailbox_id ?? `route:${group.route.match}`;
}

export interface DeliveryResult {
  /** how many route groups were posted */
  posted: number;
  /** how many route groups were skipped: the dedupe store had them delivered already */
  duplicates: number;
}

/** What became of each route group: its failure, or none (posted, or delivered before). */
export interface RoutesResult extends DeliveryResult {
  outcomes: Array<{ group: RouteGroup; failure?: unknown }>;
}

/** The failure the sender hears of: the first temporary one (it retries), else the first. */
export function decisiveFailure(failures: unknown[]): unknown {
  return failures.find(isTemporary) ?? failures[0];
}

/**
 * Posts a parsed message once per route. Every route is tried; if any failed, the first
 * temporary failure is thrown (the sender retries), else the first permanent one. The routes
 * share the message's attachment files; the caller disposes of the message afterwards.
 *
 * With a `dedupe` store (sync mode), a route already delivered within the window is skipped and
 * each route posted now is recorded: when the sender retries a message after a 451 caused by
 * one route, the routes that went through are not posted again. Without one (previews, tools),
 * every route is posted.
 */
export async function deliverMessage(
  message: ParsedMessage,
  envelope: Envelope,
  config: Pick<Config, 'routes' | 'mapping'>,
  sink: PayloadSink,
  dedupe?: DedupeStore,
  fingerprint?: string,
): Promise<DeliveryResult> {
  const { outcomes, posted, duplicates } = await deliverRoutes(
    message,
    envelope,
    config,
    sink,
    dedupe,
    fingerprint,
  );
  const failures = outcomes.filter(o => 'failure' in o).map(o => o.failure);
  if (failures.length > 0) throw decisiveFailure(failures);
  return { posted, duplicates };
}

/** As deliverMessage, but tells what became of each route instead of throwing a failure. */
export async function deliverRoutes(
  message: ParsedMessage,
  envelope: Envelope,
  config: Pick<Config, 'routes' | 'mapping'>,
  sink: PayloadSink,
  dedupe?: DedupeStore,
  fingerprint?: string,
): Promise<RoutesResult> {
  const bodies = buildPayloads(message, envelope, config);
  // keyed as the queue workers key theirs: the normalised Message-ID, the mailbox and the
  // message's fingerprint
  const messageId = dedupe ? messageIds(message).messageId : '';
  const outcomes: RoutesResult['outcomes'] = [];
  let duplicates = 0;
  for (const [routeIndex, body] of bodies.entries()) {
    const key =
      dedupe && DedupeStore.key(messageId, mailboxKey(body.group), fingerprint);
    if (dedupe && key && (await dedupe.has(key))) {
      duplicates++;
      outcomes.push({ group: body.group });
      continue;
    }
    try {
      await sink.send(body.payload, {
        idempotencyKey: body.idempotencyKey,
        queueId: envelope.id,
        routeIndex,
      });
    } catch (err) {
      outcomes.push({ group: body.group, failure: err });
      continue;
    }
    outcomes.push({ group: body.group });
    // a record that cannot be written costs at most one duplicate post on a retry; failing the
    // message here would make the sender resend it, and post this route again for sure
    if (dedupe && key) await dedupe.add(key).catch(() => undefined);
  }
  return { outcomes, posted: bodies.length - duplicates, duplicates };
}
