// The port the pipeline posts through: where mapped bodies go (the API, or the dry-run folder
// when no token is configured), and the whole attempts a sink may run on another thread.
import type { SenderAuth } from '../auth/verdict.js';
import type { ApiPayload } from '../map/api-payload.js';
import type { Envelope } from '../mail/envelope.js';
import type { RouteGroup } from '../routing/resolve-route.js';

/**
 * The outcome line of a message taken by the dry-run sink: a `warn`, never "message delivered",
 * so that a missing token cannot pass for a working bridge (the body went to disk, not the API).
 */
export const DRY_RUN_OUTCOME = 'message NOT POSTED (dry-run: no api.token)';

/** A raw message in a file: from byte `start` (0 by default), `length` bytes (to the end). */
export interface RawFile {
  path: string;
  start?: number;
  length?: number;
}

/** A whole attempt at a message for the post thread (api/post-thread/delivery-job.ts). */
export interface DeliveryJob {
  /**
   * The raw message: its bytes (handed over to the thread), or the file that holds it (the
   * thread reads it there: a large message is never read, parsed or sanitized on the thread
   * that answers SMTP).
   */
  raw: Uint8Array | RawFile;
  /** where attachment files are written while the job runs */
  attachmentDir?: string;
  envelope: Envelope;
  /** the routes to post, in order */
  groups: RouteGroup[];
  /** the message's size in bytes, when known (a large one waits for its turn to be parsed) */
  size?: number;
  /**
   * The sender's judgement, when made already; else the job judges it if a route asks
   * (pipeline/route-policy.ts), on the thread that runs it
   */
  auth?: SenderAuth;
}

export interface PostContext {
  /** stable for the same message and route, so the API can drop a repeated POST */
  idempotencyKey: string;
  /** queue id of the message, for logs and file names */
  queueId: string;
  /** position of the route group within the message */
  routeIndex: number;
}

/** A delivery job's outcome, judged: each route's failure (none: the API took it), or why nothing was posted. */
export type JobResult = (
  | {
      kind: 'posted';
      /**
       * `duplicate`: an earlier route of the job took the same mailbox; not posted. `held`:
       * the route's policy held it (the reason); not posted. `dropped`: the route's policy
       * dropped it (the reason); not posted, the route done.
       */
      routes: Array<{
        index: number;
        failure?: unknown;
        duplicate?: boolean;
        held?: string;
        /** taken, with these left out to fit the API (api/fit-body.ts) */
        trimmed?: string[];
        dropped?: string;
      }>;
      /** the normalised Message-ID of the parsed message */
      messageId?: string;
    }
  /** the raw message could not be parsed (PermanentError) or read (TemporaryError) */
  | { kind: 'unparsed'; error: unknown }
) & {
  /** the sender's judgement, when a route asked for one */
  auth?: SenderAuth;
  /** true when the job made it (not given it): count it once */
  judged?: boolean;
};

/** What a sink says of a body it took: what it left out to fit the API (api/fit-body.ts). */
export interface SendReceipt {
  /** the names of what was left out (attachments; the text, as "(the message text)") */
  leftOut?: string[];
}

/** Takes one body; throws TemporaryError or PermanentError when it was not taken. */
export interface PayloadSink {
  readonly kind: 'api' | 'dry-run';
  send(payload: ApiPayload, context: PostContext): Promise<SendReceipt | void>;
  /**
   * Parses, maps and posts a message on another thread (delivery-job.ts). Undefined when the
   * sink cannot: the job is not taken, and the caller attempts the message itself.
   */
  deliverJob?(
    job: DeliveryJob,
    queueId: string,
  ): Promise<JobResult> | undefined;
  /** Resolves once the sink can take bodies without a start-up delay (the post thread). */
  ready?(): Promise<void>;
  /** Puts a rotated API token in force for the POSTs that start from now on (SIGHUP). */
  setToken?(token: string): void;
  close(): Promise<void>;
}
