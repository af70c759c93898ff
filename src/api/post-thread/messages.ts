// What crosses between the main thread and the post thread: requests, jobs and their answers.
import type { SenderAuthOptions } from '../../auth/sender-auth.js';
import type { SenderAuth } from '../../auth/verdict.js';
import type { ApiConfig, MappingConfig } from '../../config/schema.js';
import type { WireError } from '../../errors/wire.js';
import type { Exchange, Posted } from '../http-exchange.js';
import type { DeliveryJob } from '../../pipeline/payload-sink.js';

export type { DeliveryJob };

/**
 * One route of a job: its exchange, or `duplicate` when the API took an earlier route of the
 * same job to the same mailbox (one dedupe key: on the main thread that route's record would
 * have been found, and this one not posted).
 */
export type RouteAnswer =
  | { index: number; posted: Posted }
  | { index: number; duplicate: true }
  /** the route's policy held it, dropped it, or deferred it (DNS): the reason */
  | { index: number; held: string }
  | { index: number; dropped: string }
  | { index: number; deferred: string };

/** What a job came to. */
export type JobAnswer =
  /** every route of the job was posted (or tried, or found a duplicate), by route index */
  (
    | { kind: 'posted'; routes: RouteAnswer[]; messageId?: string }
    /** the raw message could not be parsed (or an attachment file not written): nothing posted */
    | { kind: 'unparsed'; error: WireError }
  ) & {
    /** the sender's judgement, when a route asked for one */
    auth?: SenderAuth;
    /** true when the job made it */
    judged?: boolean;
  };

/** A POST for the post thread. */
export interface PostRequest {
  id: number;
  url: string;
  body: Uint8Array;
  headers: Record<string, string>;
}

/** Its answer: the exchange, by id. */
export type PostAnswer = Exchange & { id: number };

/** A whole attempt for the post thread (delivery-job.ts). */
export interface JobRequest {
  id: number;
  job: DeliveryJob;
}

/** What the worker is given at start. */
export interface PostWorkerData {
  config: ApiConfig;
  /** present when the thread runs delivery jobs */
  mapping?: MappingConfig;
  /** whether a proxy is configured (see createHttp); the thread reads no environment */
  proxyConfigured?: boolean;
  /** how the thread judges senders for the jobs that need it (absent: it does not) */
  auth?: Omit<SenderAuthOptions, 'observe'>;
}
