// The HTTP primitives both threads use: one POST under a deadline, its body, its answer read.
import type { Readable } from 'node:stream';
import { isSuccess } from './classify-failure.js';
import type { HttpPoster } from './http-poster.js';
import type { SerializedPayload } from './payload-stream.js';

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

/** One POST's exchange, and the error of an attachment file that could not be read for it. */
export type Posted = Exchange & { readError?: string };

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
