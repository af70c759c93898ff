// Where mapped bodies go: the API, or the dry-run folder when no token is configured.
import type { ApiPayload } from '../map/api-payload.js';

export interface PostContext {
  /** stable for the same message and route, so the API can drop a repeated POST */
  idempotencyKey: string;
  /** queue id of the message, for logs and file names */
  queueId: string;
  /** position of the route group within the message */
  routeIndex: number;
}

/** Takes one body; throws TemporaryError or PermanentError when it was not taken. */
export interface PayloadSink {
  readonly kind: 'api' | 'dry-run';
  send(payload: ApiPayload, context: PostContext): Promise<void>;
  /** Resolves once the sink can take bodies without a start-up delay (the post thread). */
  ready?(): Promise<void>;
  close(): Promise<void>;
}
