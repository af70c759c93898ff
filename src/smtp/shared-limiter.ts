// Per-client limits across a cluster. Each worker accepts its own sessions, but a client's
// sessions, connection rate and failed logins must be counted once for the whole daemon, or
// every limit would multiply by the number of workers. So the primary keeps the one
// ClientLimiter and each worker asks it over the cluster's IPC channel: one round trip when a
// session starts and for each failed login; a session's end is only told.
//
// A worker that gets no answer in time (a primary that is stuck) refuses the session for now
// (421: the client tries again), and has the primary undo a count the late answer made.
import {
  ClientLimiter,
  type ClientCounter,
  type ClientLimits,
  type Refusal,
} from './client-access.js';

/** What a worker asks its primary. */
export type LimiterRequest =
  | { type: 'limiter'; op: 'open'; id: number; address: string }
  | { type: 'limiter'; op: 'close'; address: string }
  /** an open granted too late: the worker had refused the session already */
  | { type: 'limiter'; op: 'cancel'; address: string }
  | { type: 'limiter'; op: 'login-failed'; id: number; address: string };

/** The primary's answer to an `open` or a `login-failed`. */
export interface LimiterAnswer {
  type: 'limiter-answer';
  id: number;
  refusal?: Refusal;
  /** login-failed: the client has failed too often (its session should close) */
  blocked?: boolean;
}

export function isLimiterRequest(message: unknown): message is LimiterRequest {
  return (message as { type?: unknown } | null)?.type === 'limiter';
}

function isLimiterAnswer(message: unknown): message is LimiterAnswer {
  return (message as { type?: unknown } | null)?.type === 'limiter-answer';
}

/**
 * In the primary: one ClientLimiter for every worker. It remembers the sessions each worker
 * holds, so that those of a worker that dies are given back.
 */
export class PrimaryLimiter {
  private readonly limiter: ClientLimiter;
  /** worker id -> client address -> sessions open there */
  private readonly held = new Map<number, Map<string, number>>();

  constructor(limits: ClientLimits, now: () => number = Date.now) {
    this.limiter = new ClientLimiter(limits, now);
  }

  /** Handles one request of worker `workerId`; the answer to send it back, if any. */
  handle(workerId: number, request: LimiterRequest): LimiterAnswer | undefined {
    const { address } = request;
    if (request.op === 'open') {
      const refusal = this.limiter.open(address);
      if (!refusal) this.count(workerId, address, +1);
      return { type: 'limiter-answer', id: request.id, refusal };
    }
    if (request.op === 'close' || request.op === 'cancel') {
      // only what this worker holds: a close for a session never counted changes nothing
      if (!this.count(workerId, address, -1)) return undefined;
      if (request.op === 'cancel') this.limiter.cancel(address);
      else this.limiter.close(address);
      return undefined;
    }
    return {
      type: 'limiter-answer',
      id: request.id,
      blocked: this.limiter.loginFailed(address),
    };
  }

  /** Gives back every session a worker that is gone still held. */
  workerGone(workerId: number): void {
    const held = this.held.get(workerId);
    this.held.delete(workerId);
    for (const [address, open] of held ?? []) {
      for (let i = 0; i < open; i++) this.limiter.close(address);
    }
  }

  /** Sessions open, all workers together (for tests and metrics). */
  get openSessions(): number {
    let open = 0;
    for (const held of this.held.values()) {
      for (const count of held.values()) open += count;
    }
    return open;
  }

  /** Adds `delta` to what the worker holds; false when it held nothing to take away. */
  private count(workerId: number, address: string, delta: 1 | -1): boolean {
    const held = this.held.get(workerId) ?? new Map<string, number>();
    const open = (held.get(address) ?? 0) + delta;
    if (open < 0) return false;
    if (open === 0) held.delete(address);
    else held.set(address, open);
    if (held.size === 0) this.held.delete(workerId);
    else this.held.set(workerId, held);
    return true;
  }
}

/** The IPC channel of a worker: `process` in a cluster worker. */
export interface LimiterChannel {
  /** `done` hears the error of a message that could not be sent (the channel closed) */
  send(message: LimiterRequest, done: (error: Error | null) => void): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

/** The refusal of a session the primary did not answer for in time. */
export const UNANSWERED: Refusal = {
  reason: 'limiter',
  responseCode: 421,
  message: '4.3.0 Service busy, try again later',
};

interface Question {
  op: 'open' | 'login-failed';
  address: string;
  answer: (answer: LimiterAnswer | null) => void;
  timer: NodeJS.Timeout;
}

/** In a worker: the per-client limits, counted by the primary. */
export class WorkerLimiter implements ClientCounter {
  private nextId = 1;
  private readonly questions = new Map<number, Question>();
  /** ids that timed out: a late `open` answer that counted a session is undone */
  private readonly unanswered = new Map<number, string>();

  constructor(
    private readonly channel: LimiterChannel,
    private readonly timeoutMs = 2000,
  ) {
    channel.on('message', message => {
      if (isLimiterAnswer(message)) this.settle(message);
    });
  }

  async open(address: string): Promise<Refusal | undefined> {
    const answer = await this.ask('open', address);
    return answer ? answer.refusal : UNANSWERED;
  }

  close(address: string): void {
    this.tell({ type: 'limiter', op: 'close', address });
  }

  /** True when the client has failed too often; unanswered, too (the session is closed). */
  async loginFailed(address: string): Promise<boolean> {
    const answer = await this.ask('login-failed', address);
    return answer ? answer.blocked === true : true;
  }

  private ask(
    op: 'open' | 'login-failed',
    address: string,
  ): Promise<LimiterAnswer | null> {
    const id = this.nextId++;
    return new Promise(answer => {
      const timer = setTimeout(() => {
        this.questions.delete(id);
        if (op === 'open') this.rememberUnanswered(id, address);
        answer(null);
      }, this.timeoutMs).unref();
      this.questions.set(id, { op, address, answer, timer });
      this.tell({ type: 'limiter', op, id, address }, () => {
        // not sent (the primary is gone): no answer will come
        if (!this.questions.delete(id)) return;
        clearTimeout(timer);
        answer(null);
      });
    });
  }

  /**
   * Unbounded on purpose: the channel keeps order, so each of these gets its answer once the
   * primary catches up, and is then forgotten; a primary that is gone ends the worker.
   */
  private rememberUnanswered(id: number, address: string): void {
    this.unanswered.set(id, address);
  }

  private settle(message: LimiterAnswer): void {
    const question = this.questions.get(message.id);
    if (question) {
      this.questions.delete(message.id);
      clearTimeout(question.timer);
      question.answer(message);
      return;
    }
    const late = this.unanswered.get(message.id);
    if (late === undefined) return;
    this.unanswered.delete(message.id);
    // the session was refused here, but the primary counted it: undone, its start with it
    if (!message.refusal) {
      this.tell({ type: 'limiter', op: 'cancel', address: late });
    }
  }

  /** Sends a request; `failed` runs when it could not be (the primary is gone). */
  private tell(request: LimiterRequest, failed?: () => void): void {
    try {
      this.channel.send(request, error => {
        if (error) failed?.();
      });
    } catch {
      failed?.();
    }
  }
}
