// The post thread (api.workerThread): Buffer bodies are posted from a worker thread of their
// own, so that axios and the HTTP exchange run on a second core while the main thread accepts
// mail, parses and maps. The main thread keeps everything else: the concurrency limit, failure
// classification, logs and metrics.
import { Worker } from 'node:worker_threads';
import type { ApiConfig } from '../config/schema.js';
import type { Exchange } from './api-client.js';

/** A POST for the post thread. */
export interface PostRequest {
  id: number;
  url: string;
  body: Uint8Array;
  headers: Record<string, string>;
}

/** Its answer: the exchange, by id. */
export type PostAnswer = Exchange & { id: number };

/**
 * The main thread's side. The worker starts with the first POST. If it dies, the POSTs it had
 * fail as temporary failures (code EPOSTTHREAD: retried like a network error), and the next
 * POST starts a new one.
 */
export class PostThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, (answer: Exchange) => void>();
  private nextId = 0;
  private closed = false;
  /** resolves once the current worker has said it is ready (or has died trying) */
  private started: Promise<void> | undefined;

  constructor(
    private readonly config: ApiConfig,
    private readonly onFailure: (err: Error) => void,
  ) {}

  post(
    url: string,
    body: Buffer,
    headers: Record<string, string>,
  ): Promise<Exchange> {
    if (this.closed) return Promise.resolve({ code: 'ECONNABORTED' });
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    // the worker keeps the process alive only while a POST waits for it
    if (this.pending.size === 0) worker.ref();
    return new Promise(resolve => {
      this.pending.set(id, resolve);
      const request: PostRequest = { id, url, body, headers };
      worker.postMessage(request);
    });
  }

  /** Starts the worker if it is not running; resolves once it is ready (or failed to start). */
  ready(): Promise<void> {
    if (!this.worker) this.start();
    return this.started ?? Promise.resolve();
  }

  /** Stops the worker; POSTs still waiting for it fail as temporary failures. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.settleAll('ECONNABORTED');
    await worker?.terminate();
  }

  private start(): Worker {
    const options = { workerData: { config: this.config } };
    // run from the sources (tests, under tsx), the worker is the .ts file, loaded through tsx
    const worker = import.meta.url.endsWith('.ts')
      ? new Worker(
          `import('tsx/esm/api').then(tsx => { tsx.register(); ` +
            `return import(${JSON.stringify(new URL('./post-worker.ts', import.meta.url).href)}); })`,
          { ...options, eval: true },
        )
      : new Worker(new URL('./post-worker.js', import.meta.url), options);
    let isReady!: () => void;
    this.started = new Promise(resolve => (isReady = resolve));
    worker.on('message', (answer: PostAnswer | 'ready') => {
      if (answer === 'ready') {
        // kept alive while it starts (someone may be waiting for it); from now on only while
        // a POST waits for it
        if (this.pending.size === 0) worker.unref();
        return isReady();
      }
      const settle = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if (this.pending.size === 0) worker.unref();
      settle?.(answer);
    });
    worker.on('error', err => this.onFailure(err));
    worker.on('exit', () => {
      isReady();
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.settleAll('EPOSTTHREAD');
    });
    this.worker = worker;
    return worker;
  }

  private settleAll(code: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const settle of waiting) settle({ code });
  }
}
