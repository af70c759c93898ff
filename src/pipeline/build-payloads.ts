// Every body a message gives, one per route group: what `preview` shows and the corpus checks.
import type { Config } from '../config/schema.js';
import type { Envelope } from '../mail/envelope.js';
import type { NoiseKind } from '../mail/noise.js';
import { PermanentError } from '../errors/bridge-error.js';
import type { ApiPayload } from '../map/api-payload.js';
import { toApiPayload } from '../map/to-api-payload.js';
import type { ParsedMessage } from '../parse/parsed-message.js';
import { groupByRoute, type RouteGroup } from '../routing/resolve-route.js';
import { idempotencyKey } from './route-keys.js';

/** Every body a message gives, one per route group, with its idempotency key. */
export function buildPayloads(
  message: ParsedMessage,
  envelope: Envelope,
  config: Pick<Config, 'routes' | 'mapping'>,
  /** the message is noise (mail/noise.ts): its priority is not taken, as when posted */
  noise?: NoiseKind,
): Array<{ group: RouteGroup; payload: ApiPayload; idempotencyKey: string }> {
  const groups = groupByRoute(envelope.rcptTo, config.routes).map(g =>
    noise ? { ...g, noise } : g,
  );
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
