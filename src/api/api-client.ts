// The API sink: posts bodies (or whole jobs, on the post thread) under api.concurrency.
import http from 'node:http';
import https from 'node:https';
import type { Environment } from '../config/environment.js';
import type { ApiConfig, MappingConfig } from '../config/schema.js';
import { PermanentError, TemporaryError } from '../errors/bridge-error.js';
import { fromWire } from '../errors/wire.js';
import type { ApiPayload } from '../map/api-payload.js';
import type { Logger } from '../observability/logger.js';
import type {
  DeliveryJob,
  JobAnswer,
  PostWorkerData,
} from './post-thread/messages.js';
import { PostThread } from './post-thread/post-thread.js';
import { classifyFailure, isSuccess } from './classify-failure.js';
import {
  AGENT_OPTIONS,
  Deadlines,
  exchange,
  parseErrors,
  postBody,
  type Posted,
} from './http-exchange.js';
import { createHttp, HttpPoster } from './http-poster.js';
import type {
  JobResult,
  PayloadSink,
  PostContext,
  SendReceipt,
} from '../pipeline/payload-sink.js';
import { serializePayload } from './payload-stream.js';
import { postFitted, type ContentFormat, type FittedPost } from './fit-body.js';
import { Slots } from './slots.js';
import { threadHeapLimitMb } from './post-thread/heap-limit.js';

/** A message over this size is a large one: at most LARGE_PARSES_AT_ONCE parsed at once. */
const LARGE_MESSAGE_BYTES = 1024 * 1024;
const LARGE_PARSES_AT_ONCE = 2;

/** A job's message size: its bytes, or what the job says of its file (unknown: large). */
function sizeOf(job: DeliveryJob): number {
  return job.raw instanceof Uint8Array
    ? job.raw.byteLength
    : (job.raw.length ?? job.size ?? Infinity);
}

/** Posts bodies to `api.url` with the bearer token. */
export class ApiClient implements PayloadSink {
  readonly kind = 'api';
  private http: HttpPoster;
  private readonly httpAgent = new http.Agent(AGENT_OPTIONS);
  private readonly httpsAgent = new https.Agent(AGENT_OPTIONS);
  /** POSTs (and jobs) in flight, at most `api.concurrency`; the others wait, in order */
  private readonly slots: Slots;
  /**
   * Jobs of large messages parsed at once: each may hold tens of MiB while it is parsed (a
   * 20 MiB HTML part is decoded whole), so a burst of them waits its turn here first.
   */
  private readonly largeParses = new Slots(LARGE_PARSES_AT_ONCE);
  /** the time limit of each POST, from its start until its answer is read or drained */
  private readonly deadlines: Deadlines;
  /** posts Buffer bodies on a thread of its own (api.workerThread) */
  private readonly thread?: PostThread;

  constructor(
    private config: ApiConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** how messages are mapped: with it, whole attempts run on the post thread (deliverJob) */
    private readonly mapping?: MappingConfig,
    /** whether a proxy is configured (see createHttp) */
    private readonly environment: Pick<Environment, 'proxyConfigured'> = {},
    /** how the post thread judges senders for its jobs (absent: it does not) */
    auth?: PostWorkerData['auth'],
    /** told how long each POST took, in seconds, once its answer (or failure) is in */
    private readonly observePost?: (seconds: number) => void,
    /** smtp.maxMessageSize: what the post thread's heap limit is sized for (heap-limit.ts) */
    maxMessageSize = 0,
  ) {
    this.deadlines = new Deadlines(config.timeoutMs);
    this.slots = new Slots(config.concurrency);
    this.http = this.makeHttp();
    if (config.workerThread) {
      this.thread = new PostThread(
        config,
        err => this.log.error('post thread failed', { error: err.message }),
        {
          mapping,
          proxyConfigured: environment.proxyConfigured,
          auth,
          heapLimitMb: threadHeapLimitMb(maxMessageSize, LARGE_PARSES_AT_ONCE),
        },
      );
    }
  }

  /**
   * A rotated `api.token` (SIGHUP) put in force: POSTs that start from now on carry it; those in
   * flight finish with the old one (the post thread's worker is retired once they are done).
   */
  setToken(token: string): void {
    this.config = { ...this.config, token };
    this.http = this.makeHttp();
    this.thread?.reconfigure(this.config);
  }

  /** The main thread's poster, for the configuration in force. */
  private makeHttp(): HttpPoster {
    return new HttpPoster(
      createHttp(
        this.config,
        this.httpAgent,
        this.httpsAgent,
        this.environment,
      ),
    );
  }

  async send(payload: ApiPayload, context: PostContext): Promise<SendReceipt> {
    await this.slots.acquire();
    // from its slot: a wait for one is ours, not the API's
    const started = this.now();
    let posted: FittedPost;
    try {
      // fitted to api.maxBodyBytes, and smaller again after a 413 (fit-body.ts)
      posted = await postFitted(payload, this.fitting, body =>
        postBody(
          serializePayload(body),
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
        ),
      );
    } finally {
      this.slots.release();
    }
    this.judge(posted, context, started);
    return posted.leftOut ? { leftOut: posted.leftOut } : {};
  }

  /** How bodies are fitted to the API (fit-body.ts). */
  private get fitting(): { limit: number; format: ContentFormat } {
    return {
      limit: this.config.maxBodyBytes,
      format: this.mapping?.content === 'text' ? 'text' : 'html',
    };
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
      const large = sizeOf(job) > LARGE_MESSAGE_BYTES;
      if (large) await this.largeParses.acquire();
      let answer: JobAnswer;
      let started: number;
      try {
        await this.slots.acquire();
        started = this.now();
        try {
          answer = await thread.deliver(job);
        } finally {
          this.slots.release();
        }
      } finally {
        if (large) this.largeParses.release();
      }
      const judgement = { auth: answer.auth, judged: answer.judged };
      if (answer.kind === 'unparsed') {
        return {
          kind: 'unparsed',
          error: fromWire(answer.error),
          ...judgement,
        };
      }
      const routes = answer.routes.map(route => {
        const { index } = route;
        if ('duplicate' in route) return { index, duplicate: true };
        if ('held' in route) return { index, held: route.held };
        if ('dropped' in route) return { index, dropped: route.dropped };
        if ('deferred' in route) {
          return { index, failure: new TemporaryError(route.deferred) };
        }
        try {
          this.judge(route.posted, { queueId, routeIndex: index }, started);
          const trimmed = (route.posted as FittedPost).leftOut;
          return trimmed ? { index, trimmed } : { index };
        } catch (err) {
          return { index, failure: err as Error };
        }
      });
      return {
        kind: 'posted',
        routes,
        messageId: answer.messageId,
        ...judgement,
      };
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
    this.observePost?.(Math.max(0, durationMs) / 1000);
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
