// The post thread (api.workerThread): a worker thread of its own runs, on a second core, what
// the main thread hands it: whole delivery jobs (parse, map and post a small message held in
// memory, see delivery-job.ts) and Buffer bodies to post. The main thread accepts mail and
// keeps everything else: dedupe, the concurrency limit, failure classification, the spool,
// logs and metrics.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EVALUATION_TIMEOUTS } from '../../auth/sender-auth.js';
import type { ApiConfig, MappingConfig } from '../../config/schema.js';
import type { Exchange } from '../http-exchange.js';
import { removeJobFiles } from './job-files.js';
import {
  POST_THREAD_SEMI_SPACE_MB,
  withYoungGeneration,
} from './young-generation.js';
import type {
  DeliveryJob,
  JobAnswer,
  JobRequest,
  PostRequest,
  PostWorkerData,
} from './messages.js';

/** A request waiting for the worker's answer. */
interface Waiting {
  /** takes the worker's answer (an Exchange for a POST, a JobAnswer for a job) */
  settle: (answer: unknown) => void;
  /** the answer when the worker cannot give one (died, closed, silent): `code` for each POST */
  fail: (code: string) => void;
  /** when it was handed over, and how long past that it may take before it is given up */
  at: number;
  limitMs: number;
  /** the worker it was handed to */
  worker: Worker;
}

/**
 * The main thread's side. The worker starts with ready() or the first POST. If it dies, the
 * POSTs it had fail as temporary failures (code EPOSTTHREAD: retried like a network error), and
 * the next POST starts a new one. A worker that dies before it is ready makes the thread
 * unusable: `usable` turns false and the caller posts from the main thread instead.
 */
export class PostThread {
  private worker: Worker | undefined;
  /** requests (POSTs and jobs) waiting for the worker's answer, by id */
  private readonly pending = new Map<number, Waiting>();
  /** the main thread's own bound on each request (see watch) */
  private watchdog: NodeJS.Timeout | undefined;
  private nextId = 0;
  private closed = false;
  private broken = false;
  /** resolves once the current worker has said it is ready (or has died trying) */
  private started: Promise<void> | undefined;
  /** workers of an earlier configuration, stopped once their requests are answered */
  private readonly retiring = new Set<Worker>();

  constructor(
    private config: ApiConfig,
    private readonly onFailure: (err: Error) => void,
    private readonly options: {
      /** a worker not ready within this long is given up: POSTs go from the main thread */
      startTimeoutMs?: number;
      /** a job's time to parse, on top of api.timeoutMs per POST (test seam; 60 s) */
      jobParseAllowanceMs?: number;
      /** makes the worker (test seam); by default post-worker.ts or .js */
      spawn?: (workerData: unknown) => Worker;
      /** how messages are mapped: without it, the thread takes no delivery jobs */
      mapping?: MappingConfig;
      /** whether a proxy is configured (see createHttp) */
      proxyConfigured?: boolean;
      /** how the thread judges senders (absent: jobs post without judging) */
      auth?: PostWorkerData['auth'];
      /**
       * the worker's old-generation limit, in MiB (heap-limit.ts); past it the worker is
       * stopped (ERR_WORKER_OUT_OF_MEMORY), its requests fail as temporary failures and the
       * next request starts a new one
       */
      heapLimitMb?: number;
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
    const bytes = handedOver(body);
    return new Promise(resolve => {
      this.request(
        id => ({ id, url, body: bytes, headers }) satisfies PostRequest,
        [bytes.buffer as ArrayBuffer],
        {
          settle: answer => resolve(answer as Exchange),
          fail: code => resolve({ code }),
          limitMs: this.config.timeoutMs + WATCH_GRACE_MS,
        },
      );
    });
  }

  /**
   * Runs a delivery job on the worker (the thread must have been made with `mapping`). Its raw
   * bytes are handed over: the caller must not use them after. Should the worker fail, every
   * route of the job fails with its code, as a POST would.
   */
  deliver(job: DeliveryJob): Promise<JobAnswer> {
    const failed = (code: string): JobAnswer => ({
      kind: 'posted',
      routes: job.groups.map(g => ({ index: g.index, posted: { code } })),
    });
    if (this.closed) return Promise.resolve(failed('EPOSTCLOSED'));
    const raw = job.raw instanceof Uint8Array ? handedOver(job.raw) : job.raw;
    return new Promise(resolve => {
      this.request(
        id => ({ id, job: { ...job, raw } }) satisfies JobRequest,
        raw instanceof Uint8Array ? [raw.buffer as ArrayBuffer] : [],
        {
          settle: answer => resolve(answer as JobAnswer),
          // the worker will not dispose of the job's attachment files: removed here first
          fail: code =>
            void removeJobFiles(job).then(() => resolve(failed(code))),
          // parsing included; the posts go one after the other
          limitMs:
            (this.options.jobParseAllowanceMs ?? JOB_PARSE_ALLOWANCE_MS) +
            job.groups.length * this.config.timeoutMs +
            this.judgingAllowanceMs(job) +
            WATCH_GRACE_MS,
        },
      );
    });
  }

  /** The longest the job may spend judging its sender (sender-auth.ts bounds it so). */
  private judgingAllowanceMs(job: DeliveryJob): number {
    const auth = this.options.auth;
    if (!auth || job.auth) return 0;
    return auth.dns.timeoutMs * EVALUATION_TIMEOUTS;
  }

  /** Hands a request to the worker (started if need be); its answer goes to `waiting.settle`. */
  private request(
    make: (id: number) => PostRequest | JobRequest,
    transfer: ArrayBuffer[],
    waiting: Omit<Waiting, 'at' | 'worker'>,
  ): void {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    // the worker keeps the process alive only while a request waits for it
    if (this.pending.size === 0) worker.ref();
    this.pending.set(id, { ...waiting, at: performance.now(), worker });
    this.watchdog ??= setInterval(
      () => this.watch(),
      WATCH_INTERVAL_MS,
    ).unref();
    worker.postMessage(make(id), transfer);
  }

  /**
   * A new API configuration (a rotated token): requests from now on go to a new worker started
   * with it; the running one is retired, stopped once the requests it has are answered.
   */
  reconfigure(config: ApiConfig): void {
    this.config = config;
    const old = this.worker;
    if (!old) return;
    this.worker = undefined;
    this.started = undefined;
    this.retiring.add(old);
    this.retireIfIdle(old);
  }

  /** Stops a retired worker once no request waits for it. */
  private retireIfIdle(worker: Worker): void {
    if (!this.retiring.has(worker)) return;
    for (const waiting of this.pending.values()) {
      if (waiting.worker === worker) return;
    }
    this.retiring.delete(worker);
    void worker.terminate();
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
    const retired = [...this.retiring];
    this.retiring.clear();
    await Promise.all([worker, ...retired].map(w => w?.terminate()));
  }

  private start(): Worker {
    const workerData: PostWorkerData = {
      config: this.config,
      mapping: this.options.mapping,
      proxyConfigured: this.options.proxyConfigured,
      auth: this.options.auth,
    };
    const worker =
      this.options.spawn?.(workerData) ??
      spawnWorker(workerData, this.options.heapLimitMb);
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

    worker.on('message', (answer: { id: number } | 'ready') => {
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
      this.retireIfIdle(worker);
    });
    worker.on('error', err => this.onFailure(err));
    worker.on('exit', code => {
      clearTimeout(startLimit);
      isReady();
      if (this.retiring.delete(worker)) {
        // stopped while retired: whatever it still had fails as for any worker that dies
        this.settleWorker(worker, 'EPOSTTHREAD');
        return;
      }
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
   * The worker bounds each POST by api.timeoutMs; should it stop answering, a request still
   * waiting a while past its limit (a job's: its parse, then each of its POSTs) fails here as a
   * timeout, every route of a job with it (its answer, if it comes, is dropped; a route the API
   * took after all is posted again later, once at most: the idempotency key names it).
   */
  private watch(): void {
    const now = performance.now();
    for (const [id, waiting] of this.pending) {
      if (now - waiting.at < waiting.limitMs) continue;
      this.pending.delete(id);
      waiting.fail('ETIMEDOUT');
    }
    if (this.pending.size === 0) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
      this.worker?.unref();
    }
  }

  /** Fails the requests waiting for `worker`. */
  private settleWorker(worker: Worker, code: string): void {
    for (const [id, waiting] of this.pending) {
      if (waiting.worker !== worker) continue;
      this.pending.delete(id);
      waiting.fail(code);
    }
  }

  private settleAll(code: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    for (const request of waiting) request.fail(code);
  }
}

/** How often requests waiting for the worker are checked, and how long past their limit. */
const WATCH_INTERVAL_MS = 1000;
const WATCH_GRACE_MS = 1000;

/** A delivery job's time to parse its message, on top of api.timeoutMs per POST. */
const JOB_PARSE_ALLOWANCE_MS = 60_000;

/**
 * The bytes to hand over to the worker: `bytes` itself when it has its memory to itself (the
 * caller no longer uses it); a small Buffer is a slice of a shared 8 KiB pool, whose own bytes
 * are copied out (postMessage would copy the whole pool, other messages' bytes included).
 */
function handedOver(bytes: Uint8Array): Uint8Array {
  const owned =
    bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;
  return owned ? bytes : new Uint8Array(bytes);
}

/** How long a worker may take to start before POSTs go from the main thread instead. */
const START_TIMEOUT_MS = 10_000;

/**
 * The post worker: run from the sources (tests, under tsx), the .ts file loaded through tsx
 * (resolved here, from this module: the worker's eval code would look from the cwd).
 */
function spawnWorker(workerData: unknown, heapLimitMb?: number): Worker {
  return withYoungGeneration(POST_THREAD_SEMI_SPACE_MB, youngMb => {
    const resourceLimits = {
      maxYoungGenerationSizeMb: youngMb,
      ...(heapLimitMb === undefined
        ? {}
        : { maxOldGenerationSizeMb: heapLimitMb }),
    };
    if (!import.meta.url.endsWith('.ts')) {
      return new Worker(new URL('./post-worker.js', import.meta.url), {
        workerData,
        resourceLimits,
      });
    }
    const entry = new URL('./post-worker.ts', import.meta.url).href;
    return new Worker(
      `import(${JSON.stringify(tsxApi())})` +
        `.then(tsx => { tsx.register(); return import(${JSON.stringify(entry)}); })`,
      { workerData, eval: true, resourceLimits },
    );
  });
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
