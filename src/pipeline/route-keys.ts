// The keys a route of a message is known by: for the API (idempotency) and for dedupe records.
import { hash } from 'node:crypto';
import type { ApiPayload } from '../map/api-payload.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import { DedupeStore } from '../dedupe/dedupe-store.js';

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

/** What a message is recognised by, as found when it was accepted. */
export interface MessageKeys {
  /** the normalised Message-ID found in its header, or null */
  messageId: string | null;
  /** its From address and body digest (mail/fingerprint.ts); absent in old spool entries */
  fingerprint?: string;
}

/**
 * The dedupe record key of a message's route, known before the message is parsed: so every
 * lane (sync, queue, hybrid; main thread or post thread) checks the same record. Undefined when
 * the message cannot be told apart from others (an entry of an older release without a
 * Message-ID): such a route is always posted, a duplicate at worst, never a loss.
 */
export function dedupeKey(
  keys: MessageKeys,
  group: Pick<RouteGroup, 'route'>,
): string | undefined {
  if (!keys.fingerprint && !keys.messageId) return undefined;
  return DedupeStore.key(
    keys.messageId ?? '',
    mailboxKey(group),
    keys.fingerprint,
  );
}
