// The state of one spooled message, as stored beside its raw bytes; and its pure transitions.
import type { SenderAuth } from '../auth/verdict.js';
import type { RouteConfig } from '../config/schema.js';
import type { Envelope } from '../mail/envelope.js';
import { extractIds } from '../mail/message-id.js';
import type { RouteGroup } from '../routing/resolve-route.js';

/**
 * pending: to be attempted; delivered: the API took it (or a dedupe record says it did);
 * failed: refused for good; held: a policy of the route kept it back, nothing posted for it.
 */
export type RouteStatus = 'pending' | 'delivered' | 'failed' | 'held';

/** One route of a message, tracked on its own: A delivered and B failing retries only B. */
export interface RouteState {
  /** the route as configured when the message was accepted */
  route: RouteConfig;
  /** position of the route in the table then (part of the stable key) */
  index: number;
  recipients: string[];
  threadId?: string;
  status: RouteStatus;
  /** the last failure of this route, if any */
  lastError?: string;
  /** the API's status and errors body for that failure, when the API answered */
  api?: { status?: number; errors: unknown[] };
  /** status 'held': why the route's policy held the message */
  heldReason?: string;
  /**
   * Status 'delivered' without a POST: the route's policy dropped the message (an auto-reply,
   * a bounce, list mail...), and why. The route is done; nothing was posted for it.
   */
  dropped?: string;
  /**
   * An operator released this route from its hold (`queue replay` of a held message). The
   * pipeline must not hold it again: no policy of the route may hold or drop it, it is posted
   * (or fails) like any other. Carried to the attempt as RouteGroup.released (pendingOf).
   */
  released?: true;
  /**
   * The route was posted with these left out to fit the API (api/fit-body.ts): the raw message
   * is kept in held/ once every route is done, as the only whole copy.
   */
  trimmed?: string[];
}

export interface AttemptRecord {
  /** ISO time of the attempt */
  at: string;
  /** route index -> outcome text ('delivered', 'HTTP 503', 'duplicate', ...) */
  results: Record<string, string>;
}

/** What the spool stores for a message, beside the raw bytes in msg/<id>.eml. */
export interface QueueEntry {
  version: 1;
  id: string;
  envelope: Envelope;
  /** the Message-ID found in the header at accept time, normalised, or null */
  messageId: string | null;
  /**
   * The From address and body digest found at accept time (mail/fingerprint.ts): a dedupe
   * record matches only the same message. Absent in entries written before it existed.
   */
  fingerprint?: string;
  size: number;
  /**
   * The sender's judgement (SPF, DKIM, DMARC, ARC), once made: at the end of DATA for a route
   * that enforces, else by the first attempt. Absent until then (a message recovered after a
   * crash before it was written is judged again).
   */
  auth?: SenderAuth;
  routes: RouteState[];
  attempts: number;
  /** ms since the epoch */
  createdAt: number;
  nextAttemptAt: number;
  lastError: string | null;
  history: AttemptRecord[];
  /** why the message is dead, once it is */
  dead?: DeadInfo;
  /** why the message is held (in held/), once it is: no route pending or failed, some held */
  held?: HeldInfo;
  /**
   * Bytes in front of the raw message in its spool file (the X-Mailbridge-Queue header line).
   * Absent in files written before that line existed: 0.
   */
  rawOffset?: number;
  /**
   * The raw message's length from rawOffset, when more follows it in its file (a message in a
   * journal segment: held in memory only, never written). Absent: up to the end of the file.
   */
  rawLength?: number;
}

export interface DeadInfo {
  reason: string;
  at: string;
  status?: number;
  apiErrors?: unknown[];
}

export interface HeldInfo {
  /** the held routes' reasons, joined with '; ' */
  reason: string;
  /** ISO time it was held: delivery.heldRetentionMs counts from here */
  at: string;
}

/** Most attempts kept in `history`; older ones are dropped (the count stays in `attempts`). */
export const HISTORY_LIMIT = 50;

/** A new entry for a message just received, its routes pending, due now. */
export function newQueueEntry(options: {
  envelope: Envelope;
  groups: RouteGroup[];
  messageId: string | null;
  size: number;
  now: number;
}): QueueEntry {
  return {
    version: 1,
    id: options.envelope.id,
    envelope: options.envelope,
    messageId: extractIds(options.messageId ?? undefined)[0] ?? null,
    size: options.size,
    routes: options.groups.map(g => ({
      route: g.route,
      index: g.index,
      recipients: g.recipients,
      threadId: g.threadId,
      status: 'pending',
    })),
    attempts: 0,
    createdAt: options.now,
    nextAttemptAt: options.now,
    lastError: null,
    history: [],
  };
}

/**
 * The entry without where its raw bytes lie in the file it was read from (rawOffset,
 * rawLength): what is written as its state, or in front of its bytes in a new file.
 */
export function withoutPosition(
  entry: QueueEntry,
): Omit<QueueEntry, 'rawOffset' | 'rawLength'> {
  const { rawOffset: _offset, rawLength: _length, ...state } = entry;
  return state;
}

/** The entry once its message is received: its size, Message-ID, and where its bytes start. */
export function withReceived(
  entry: QueueEntry,
  received: {
    size: number;
    messageId: string | null;
    fingerprint?: string;
    offset: number;
    auth?: SenderAuth;
  },
): QueueEntry {
  return {
    ...entry,
    ...(received.auth ? { auth: received.auth } : {}),
    size: received.size,
    messageId: extractIds(received.messageId ?? undefined)[0] ?? null,
    fingerprint: received.fingerprint,
    rawOffset: received.offset,
  };
}

/**
 * The route groups still pending (not delivered, not refused for good, not held), in order; a
 * route an operator released from its hold says so (`released`).
 */
export function pendingOf(entry: QueueEntry): RouteGroup[] {
  return entry.routes
    .filter(r => r.status === 'pending')
    .map(r => ({
      route: r.route,
      index: r.index,
      recipients: r.recipients,
      threadId: r.threadId,
      ...(r.released ? { released: true as const } : {}),
    }));
}

/**
 * Puts a dead message back in the queue: failed routes (and routes left pending when it
 * expired) pending again, due now. Routes delivered stay delivered, routes held stay held (a
 * replay of the held message releases those).
 */
export function replayEntry(entry: QueueEntry, now: number): QueueEntry {
  return {
    ...entry,
    routes: entry.routes.map(r =>
      r.status === 'delivered' || r.status === 'held'
        ? r
        : { ...r, status: 'pending' },
    ),
    dead: undefined,
    attempts: 0,
    createdAt: now,
    nextAttemptAt: now,
  };
}

/**
 * Puts a held message back in the queue, due now: its held routes pending again and marked
 * `released`, so the policy that held them lets them through this time.
 */
export function releaseEntry(entry: QueueEntry, now: number): QueueEntry {
  return {
    ...entry,
    routes: entry.routes.map(r => {
      if (r.status !== 'held') return r;
      const { heldReason: _reason, ...route } = r;
      return { ...route, status: 'pending', released: true };
    }),
    held: undefined,
    attempts: 0,
    createdAt: now,
    nextAttemptAt: now,
  };
}
