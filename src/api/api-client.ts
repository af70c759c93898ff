// POST to the API with axios: one instance, keep-alive, explicit timeout, no redirects.
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { ApiConfig, MappingConfig } from '../config/schema.js';
import { PermanentError, TemporaryError } from '../errors/bridge-error.js';
import { fromWire } from '../errors/wire.js';
import type { ApiPayload } from '../map/api-payload.js';
import type { Logger } from '../observability/logger.js';
import { classifyFailure, isSuccess } from './classify-failure.js';
import type {
  DeliveryJob,
  JobAnswer,
  Posted,
} from '../post-thread/delivery-job.js';
import type { JobResult, PayloadSink, PostContext } from './payload-sink.js';
import { createHttp, HttpPoster } from './http-poster.js';
import { PostThread } from '../post-thread/post-thread.js';
import { serializePayload, type SerializedPayload } from './payload-stream.js';

/** The largest error body we read from the API; more is cut off. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * A body up to this size without attachment files is posted as one Buffer: the same bytes and
 * headers as a stream, without the stream machinery. Such a body is text already in memory
 * (the message's text and HTML), so its one Buffer adds a copy of bounded size.
 */
export const INLINE_BODY_BYTES = 1024 * 1024;

export interface ApiError {
  code?: string;
  message?: string;
  deprecated?: boolean;
  will_be_deprecated?: boolean;
}

/**
 * Connections are kept for the next POST. TCP keep-alive probes start after 60 s idle: the
 * delay axios sets on every request's socket, so the agent, which sets its own each time it
 * takes a socket back, agrees with it (with Node's default of 1 s the two reset the socket's
 * keep-alive in turn: five setsockopt calls per POST).
 */
export const AGENT_OPTIONS = { keepAlive: true, keepAliveMsecs: 60_000 };

/** Posts bodies to `api.url` with the bearer token. */
export class ApiClient implements PayloadSink {
  readonly kind = 'api';
  private readonly http: HttpPoster;
  private readonly httpAgent = new http.Agent(AGENT_OPTIONS);
  private readonly httpsAgent = new https.Agent(AGENT_OPTIONS);
  /** POSTs in flight, at most `api.concurrency`; the others wait in `waiting`, in order. */
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** the time limit of each POST, from its start until its answer is read or drained */
  private readonly deadlines: Deadlines;
  /** posts Buffer bodies on a thread of its own (api.workerThread) */
  private readonly thread?: PostThread;

  constructor(
    private readonly config: ApiConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** how messages are mapped: with it, whole attempts run on the post thread (deliverJob) */
    private readonly mapping?: MappingConfig,
  ) {
    this.deadlines = new Deadlines(config.timeoutMs);
    this.http = new HttpPoster(
      createHttp(config, this.httpAgent, this.httpsAgent),
    );
    if (config.workerThread) {
      this.thread = new PostThread(
        config,
        err => this.log.error('post thread failed', { error: err.message }),
        { mapping },
      );
    }
  }

  async send(payload: ApiPayload, context: PostContext): Promise<void> {
    const started = this.now();
    const body = serializePayload(payload);
    await this.acquireSlot();
    let posted: Posted;
    try {
      posted = await postBody(
        body,
        context.idempotencyKey,
        (request, headers) =>
          // streamed bodies (attachments read from their files) go from here
          this.thread?.usable && Buffer.isBuffer(request)
            ? this.thread.post(this.config.url, request, headers)
            : exchange(
                this.http,
                this.deadlines,
                this.config.url,
                request,
                headers,
              ),
      );
    } finally {
      this.releaseSlot();
    }
    this.judge(posted, context, started);
  }

  /**
   * Runs a delivery job on the post thread (see delivery-job.ts) under one concurrency slot,
   * and judges each route's exchange as send() would. Undefined when there is no usable thread:
   * the job is not taken (its bytes are still the caller's).
   */
  deliverJob(
    job: DeliveryJob,
    queueId: string,
  ): Promise<JobResult> | undefined {
    const thread = this.thread;
    if (!thread?.usable || !this.mapping) return undefined;
    return (async () => {
      const started = this.now();
      await this.acquireSlot();
      let answer: JobAnswer;
      try {
        answer = await thread.deliver(job);
      } finally {
        this.releaseSlot();
      }
      if (answer.kind === 'unparsed') {
        return { kind: 'unparsed', error: fromWire(answer.error) };
      }
      const routes = answer.routes.map(route => {
        const { index } = route;
        if ('duplicate' in route) return { index, duplicate: true };
        try {
          this.judge(route.posted, { queueId, routeIndex: index }, started);
          return { index };
        } catch (err) {
          return { index, failure: err as Error };
        }
      });
      return { kind: 'posted', routes, messageId: answer.messageId };
    })();
  }

  /** Returns when the API took the body; else throws TemporaryError or PermanentError. */
  private judge(
    posted: Posted,
    context: Pick<PostContext, 'queueId' | 'routeIndex'>,
    started: number,
  ): void {
    const { status, data, code, retryAfter, readError } = posted;
    const durationMs = this.now() - started;
    // made only when a line is written: most posts succeed and log nothing above debug
    const log = () =>
      this.log.child({
        queueId: context.queueId,
        routeIndex: context.routeIndex,
      });
    if (readError !== undefined && status === undefined) {
      // our side failed (an attachment file gone or changed), not the API: try again later
      log().warn('attachment could not be read', { error: readError });
      throw new TemporaryError(`local error: ${readError}`);
    }
    if (isSuccess(status)) {
      if (this.log.isDebugEnabled()) {
        log().debug('api accepted', { status, durationMs });
      }
      return;
    }
    const failure = classifyFailure({
      status,
      code,
      retryAfter,
      now: this.now(),
    });
    const errors = parseErrors(data);
    for (const e of errors.filter(e => e.deprecated)) {
      log().warn('api error code is deprecated', { apiCode: e.code });
    }
    const fields = {
      status,
      code,
      durationMs,
      reason: failure.reason,
      apiErrors: errors,
    };
    if (failure.configError) {
      log().error('api rejected our configuration', fields);
    } else log().warn('api post failed', fields);
    const message = `API ${failure.reason}`;
    const api = { status, errors };
    if (!failure.temporary) throw new PermanentError(message, { api });
    throw new TemporaryError(message, {
      configError: failure.configError,
      retryAt: failure.retryAt,
      api,
    });
  }

  private async acquireSlot(): Promise<void> {
    if (this.active < this.config.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>(resolve => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiting POST, or frees it. */
  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  /** Resolves once the post thread (if any) has started. */
  async ready(): Promise<void> {
    await this.thread?.ready();
  }

  async close(): Promise<void> {
    this.deadlines.close();
    await this.thread?.close();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** What one POST came to: the API's status and answer, or the error code of a failure. */
export interface Exchange {
  /** absent when no answer came */
  status?: number;
  retryAfter?: string;
  /** an error answer's body (up to MAX_RESPONSE_BYTES), '' for a success */
  data?: string;
  /** Node's or axios's error code, when the POST failed (ECONNREFUSED, ERR_CANCELED, ...) */
  code?: string;
}

/**
 * One POST under the time limit of `deadlines`: on this thread, or on the post thread (which
 * runs this same function).
 */
export async function exchange(
  client: HttpPoster,
  deadlines: Deadlines,
  url: string,
  request: Buffer | Readable,
  headers: Record<string, string>,
): Promise<Exchange> {
  const deadline = deadlines.start();
  let answer: Readable | undefined;
  let status: number | undefined;
  let retryAfter: string | undefined;
  try {
    const response = await client.post(
      url,
      request,
      headers,
      deadline.controller.signal,
    );
    status = response.status;
    retryAfter = headerString(
      (response.headers as Record<string, unknown>)['retry-after'],
    );
    answer = response.data as Readable;
    return { status, retryAfter, data: await readAnswer(answer, status) };
  } catch (err) {
    return {
      status,
      retryAfter,
      code: (err as { code?: string }).code ?? 'UNKNOWN',
    };
  } finally {
    // a success's answer drains on, unread: the time limit holds until it is done
    if (answer && !answer.destroyed) {
      answer.once('close', () => deadlines.end(deadline));
    } else deadlines.end(deadline);
  }
}

/**
 * Posts `body` with `post` (Content-Length and Idempotency-Key set): as one Buffer when small
 * and without attachment files, else streamed, the attachments read from their files as it is
 * written. Never throws: an attachment file that could not be read is in `readError`.
 */
export async function postBody(
  body: SerializedPayload,
  idempotencyKey: string,
  post: (
    request: Buffer | Readable,
    headers: Record<string, string>,
  ) => Promise<Exchange>,
): Promise<Posted> {
  const request = requestBody(body);
  const stream = Buffer.isBuffer(request) ? undefined : request;
  let readError: Error | undefined;
  stream?.once('error', (err: Error) => (readError = err));
  const headers = {
    'Idempotency-Key': idempotencyKey,
    'Content-Length': String(body.length),
  };
  try {
    const result = await post(request, headers);
    return readError ? { ...result, readError: readError.message } : result;
  } finally {
    // an early answer (or an error) leaves the rest unread: close the attachment file
    stream?.destroy();
  }
}

/** What is posted: small bodies without attachment files as one Buffer, others as a stream. */
export function requestBody(body: SerializedPayload): Buffer | Readable {
  const inline = body.length <= INLINE_BODY_BYTES ? body.toBuffer() : null;
  return inline ?? body.stream();
}

/** One POST under a time limit: its signal aborts once the limit is past. */
interface Deadline {
  readonly at: number;
  readonly controller: AbortController;
}

/**
 * The time limit of every POST in flight, kept by one timer instead of one per POST
 * (AbortSignal.timeout: a timer, a signal and its bookkeeping, twice the CPU of a plain
 * AbortController). All POSTs get the same limit, so their deadlines come in the order they
 * started: the timer only ever waits for the oldest. It is armed when a POST starts and none is
 * pending, re-armed while POSTs remain, and unref'd: it never keeps the process alive.
 */
export class Deadlines {
  /** oldest first */
  private readonly pending: Deadline[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly limitMs: number) {}

  start(): Deadline {
    const deadline = {
      at: performance.now() + this.limitMs,
      controller: new AbortController(),
    };
    this.pending.push(deadline);
    this.timer ??= this.arm(this.limitMs);
    return deadline;
  }

  /** The POST is over: it is no longer aborted. Harmless when it already was. */
  end(deadline: Deadline): void {
    const index = this.pending.indexOf(deadline);
    if (index >= 0) this.pending.splice(index, 1);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): NodeJS.Timeout {
    return setTimeout(() => this.sweep(), Math.ceil(delayMs)).unref();
  }

  /** Aborts every POST past its deadline; waits for the next one, if any. */
  private sweep(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.pending[0] && this.pending[0].at <= now) {
      this.pending.shift()?.controller.abort();
    }
    const next = this.pending[0];
    if (next) this.timer = this.arm(next.at - now);
  }
}

function headerString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * The body of an answer: a success's is drained unread (whatever its size: it is not an error,
 * and the socket stays reusable); an error's is read up to MAX_RESPONSE_BYTES, the rest dropped.
 */
export async function readAnswer(
  body: Readable,
  status: number,
): Promise<string> {
  if (isSuccess(status)) {
    body.resume();
    return '';
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= MAX_RESPONSE_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8');
}

/** The `errors` array of an error body, or [] when the body is not the documented JSON. */
export function parseErrors(data: unknown): ApiError[] {
  if (typeof data !== 'string' || !data) return [];
  try {
    const body = JSON.parse(data) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return [];
    return body.errors
      .filter(
        (e): e is Record<string, unknown> =>
          typeof e === 'object' && e !== null,
      )
      .map(e => ({
        code: typeof e.code === 'string' ? e.code : undefined,
        message: typeof e.message === 'string' ? e.message : undefined,
        deprecated: e.deprecated === true,
        will_be_deprecated: e.will_be_deprecated === true,
      }));
  } catch {
    return [];
  }
}
