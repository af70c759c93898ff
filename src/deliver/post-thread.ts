// The post thread (api.workerThread): Buffer bodies are posted from a worker thread of their
// own, so that axios and the HTTP exchange run on a second core while the main thread accepts
// mail, parses and maps. The main thread keeps everything else: the concurrency limit, failure
// classification, logs and metrics.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
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
 * The main thread's side. The worker starts with ready() or the first POST. If it dies, the
 * POSTs it had fail as temporary failures (code EPOSTTHREAD: retried like a network error), and
 * the next POST starts a new one. A worker that dies before it is ready makes the thread
 * unusable: `usable` turns false and the caller posts from the main thread instead.
 */
export class PostThread {
  private worker: Worker | undefined;
  /** POSTs waiting for the worker's answer, by id, with the time they were handed over */
  private readonly pending = new Map<
    number,
    { settle: (answer: Exchange) => void; at: number }
  >();
  /** the main thread's own bound on each POST (see watch) */
  private watchdog: NodeJS.Timeout | undefined;
  private nextId = 0;
  private closed = false;
  private broken = false;
  /** resolves once the current worker has said it is ready (or has died trying) */
  private started: Promise<void> | undefined;

  constructor(
    private readonly config: ApiConfig,
    private readonly onFailure: (err: Error) => void,
    private readonly options: {
      /** a worker not ready within this long is given up: POSTs go from the main thread */
      startTimeoutMs?: number;
      /** makes the worker (test seam); by default post-worker.ts or .js */
      spawn?: (workerData: unknown) => Worker;
    } = {},
  ) {}

  /** False once a worker could not start (the caller then posts from the main thread). */
  get usable(): boolean {
    return !this.broken && !this.closed;
  }

  /** Posts `body` from the worker; the body is handed over: the caller must not use it after. */
  post(
    url: string,
    body: Buffer,
    headers: Record<string, string>,
  ): Promise<Exchange> {
    if (this.closed) return Promise.resolve({ code: 'EPOSTCLOSED' });
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    // the worker keeps the process alive only while a POST waits for it
    if (this.pending.size === 0) worker.ref();
    // handed over, not copied, when the Buffer has its memory to itself (the caller no longer
    // uses it); a small one is a slice of a shared 8 KiB pool: its own bytes are copied out
    const owned =
      body.byteOffset === 0 && body.buffer.byteLength === body.length;
    const bytes: Uint8Array = owned ? body : new Uint8Array(body);
    return new Promise(resolve => {
      this.pending.set(id, { settle: resolve, at: performance.now() });
      this.watchdog ??= setInterval(
        () => this.watch(),
        WATCH_INTERVAL_MS,
      ).unref();
      const request: PostRequest = { id, url, body: bytes, headers };
      worker.postMessage(request, [bytes.buffer as ArrayBuffer]);
    });
  }

  /** Starts the worker if it is not running; resolves once it is ready (or failed to start). */
  ready(): Promise<void> {
    if (!this.usable) return Promise.resolve();
    if (!this.worker) this.start();
    return this.started ?? Promise.resolve();
  }

  /** Stops the worker; POSTs still waiting for it fail as temporary failures. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.settleAll('EPOSTCLOSED');
    await worker?.terminate();
  }

  private start(): Worker {
    const workerData = { config: this.config };
    const worker = this.options.spawn?.(workerData) ?? spawnWorker(workerData);
    let ready = false;
    let isReady!: () => void;
    this.started = new Promise(resolve => (isReady = resolve));
    // a worker that never says it is ready (wedged while it loads) is given up
    const limitMs = this.options.startTimeoutMs ?? START_TIMEOUT_MS;
    const startLimit = setTimeout(() => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.broken = true;
      this.onFailure(
        new Error(
          `post thread not ready within ${limitMs} ms; posting from the main thread`,
        ),
      );
      this.settleAll('EPOSTTHREAD');
      isReady();
      void worker.terminate();
    }, limitMs);

    worker.on('message', (answer: PostAnswer | 'ready') => {
      if (answer === 'ready') {
        // kept alive while it starts (someone may be waiting for it); from now on only while
        // a POST waits for it
        if (this.pending.size === 0) worker.unref();
        ready = true;
        clearTimeout(startLimit);
        return isReady();
      }
      const waiting = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if (this.pending.size === 0) worker.unref();
      waiting?.settle(answer);
    });
    worker.on('error', err => this.onFailure(err));
    worker.on('exit', code => {
      clearTimeout(startLimit);
      isReady();
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (!ready) {
        this.broken = true;
        this.onFailure(
          new Error(
            `post thread could not start (exit code ${code}); posting from the main thread`,
          ),
        );
      } else {
        this.onFailure(new Error(`post thread exited (code ${code})`));
      }
      this.settleAll('EPOSTTHREAD');
    });
    this.worker = worker;
    return worker;
  }

  /**
   * The worker bounds each POST by api.timeoutMs; should it stop answering, a POST still
   * waiting a while past that fails here as a timeout (its answer, if it comes, is dropped).
   */
  private watch(): void {
    const limit = this.config.timeoutMs + WATCH_GRACE_MS;
    const now = performance.now();
    for (const [id, waiting] of this.pending) {
      if (now - waiting.at < limit) continue;
      this.pending.delete(id);
      waiting.settle({ code: 'ETIMEDOUT' });
    }
    if (this.pending.size === 0) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
      this.worker?.unref();
    }
  }

  private settleAll(code: string): void {
    const waiting = [...this.pending.values()].map(p => p.settle);
    this.pending.clear();
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    for (const settle of waiting) settle({ code });
  }
}

/** How often POSTs waiting for the worker are checked, and how long past api.timeoutMs. */
const WATCH_INTERVAL_MS = 1000;
const WATCH_GRACE_MS = 1000;

/** How long a worker may take to start before POSTs go from the main thread instead. */
const START_TIMEOUT_MS = 10_000;

/**
 * The post worker: run from the sources (tests, under tsx), the .ts file loaded through tsx
 * (resolved here, from this module: the worker's eval code would look from the cwd).
 */
function spawnWorker(workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./post-worker.js', import.meta.url), {
      workerData,
    });
  }
  const entry = new URL('./post-worker.ts', import.meta.url).href;
  return new Worker(
    `import(${JSON.stringify(tsxApi())})` +
      `.then(tsx => { tsx.register(); return import(${JSON.stringify(entry)}); })`,
    { workerData, eval: true },
  );
}

/**
 * The URL of tsx's ESM API (`tsx/esm/api`, its import entry), resolved from this module: a
 * worker's eval code would resolve a bare name from the working directory instead.
 */
function tsxApi(): string {
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  return pathToFileURL(join(dirname(pkg), 'dist', 'esm', 'api', 'index.mjs'))
    .href;
}
