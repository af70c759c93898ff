// parse -> map -> post for one message: the same steps in sync mode and, later, in a queue worker.
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Envelope } from '../envelope.js';
import { BridgeError, PermanentError } from '../errors/bridge-error.js';
import type { ApiPayload } from '../map/api-payload.js';
import { toApiPayload } from '../map/to-api-payload.js';
import type { ParsedMessage } from '../parse/parsed-message.js';
import { groupByRoute, type RouteGroup } from '../routing/resolve-route.js';
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
  return createHash('sha256')
    .update(
      `${payload.ext_msg_id}\n${group.route.match}\n${group.route.mailbox_id ?? ''}`,
    )
    .digest('hex');
}

export interface DeliveryResult {
  /** how many route groups were posted */
  posted: number;
}

/**
 * Posts a parsed message once per route. Every route is tried; if any failed, the first
 * temporary failure is thrown (the sender retries), else the first permanent one. The routes
 * share the message's attachment files; the caller disposes of the message afterwards.
 */
export async function deliverMessage(
  message: ParsedMessage,
  envelope: Envelope,
  config: Pick<Config, 'routes' | 'mapping'>,
  sink: PayloadSink,
): Promise<DeliveryResult> {
  const bodies = buildPayloads(message, envelope, config);
  const failures: unknown[] = [];
  for (const [routeIndex, body] of bodies.entries()) {
    try {
      await sink.send(body.payload, {
        idempotencyKey: body.idempotencyKey,
        queueId: envelope.id,
        routeIndex,
      });
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) {
    throw (
      failures.find(e => !(e instanceof BridgeError) || e.temporary) ??
      failures[0]
    );
  }
  return { posted: bodies.length };
}
