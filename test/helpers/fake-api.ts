// A real node:http server standing in for the API: records every request, answers as told.
import { once } from 'node:events';
import { EventEmitter } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** the parsed JSON body */
  body: Record<string, unknown>;
}

/** What the stand-in answers: a status with an optional body and headers, or a stall. */
export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** never answer (the client must time out) */
  stall?: boolean;
  /** answer only after this many ms */
  delayMs?: number;
}

export class FakeApi extends EventEmitter {
  readonly requests: RecordedRequest[] = [];
  private readonly replies: FakeReply[] = [];
  private defaultReply: FakeReply = { status: 204 };
  private responder?: (request: RecordedRequest) => FakeReply | undefined;
  private readonly server: Server;
  private readonly stalled: ServerResponse[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private inFlight = 0;
  private readonly finishers = new WeakMap<ServerResponse, () => void>();
  /** the most requests that were ever waiting for their answer at the same time */
  maxInFlight = 0;
  url = '';

  constructor() {
    super();
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      // counted down before the answer is written (or when the client gives up), so a request
      // sent after the client saw an answer can never overlap it
      let counted = true;
      const countDown = () => {
        if (counted) this.inFlight--;
        counted = false;
      };
      res.once('close', countDown);
      this.finishers.set(res, countDown);
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const recorded: RecordedRequest = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
        };
        this.requests.push(recorded);
        this.answer(
          res,
          this.replies.shift() ??
            this.responder?.(recorded) ??
            this.defaultReply,
        );
        this.emit('request', recorded);
      });
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/api/v1/message`;
    return this;
  }

  /** The next requests get these replies, in order; afterwards the default. */
  reply(...replies: FakeReply[]): this {
    this.replies.push(...replies);
    return this;
  }

  /**
   * Decides the reply from the request (e.g. by `body.mailbox_id`) when no queued reply is
   * left; returning undefined falls back to the default.
   */
  respondWith(
    responder: (request: RecordedRequest) => FakeReply | undefined,
  ): this {
    this.responder = responder;
    return this;
  }

  /** Every request without a queued reply gets this one. */
  setDefault(reply: FakeReply): this {
    this.defaultReply = reply;
    return this;
  }

  /** Answers every request stalled so far with `reply` (delayed ones included). */
  releaseStalled(reply: FakeReply = { status: 204 }): void {
    for (const res of this.stalled.splice(0)) {
      if (!res.headersSent && !res.destroyed) this.answer(res, reply);
    }
  }

  /** Resolves once `count` requests in all have been recorded. */
  async waitForRequests(count: number): Promise<RecordedRequest[]> {
    while (this.requests.length < count) await once(this, 'request');
    return this.requests;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const res of this.stalled) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>(done => this.server.close(() => done()));
  }

  private answer(res: ServerResponse, reply: FakeReply): void {
    if (reply.stall) {
      this.stalled.push(res);
      return;
    }
    if (reply.delayMs) {
      this.stalled.push(res);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.answer(res, { ...reply, delayMs: 0 });
      }, reply.delayMs);
      this.timers.add(timer);
      return;
    }
    // answered already (releaseStalled before a delay ran out)
    if (res.headersSent) return;
    this.finishers.get(res)?.();
    const body = reply.body === undefined ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...reply.headers,
    });
    res.end(body);
  }
}

/** Starts a stand-in API. */
export function startFakeApi(): Promise<FakeApi> {
  return new FakeApi().start();
}
