// Unit tables for attemptDelivery: one attempt's decision (delivered, retry, dead) from the posts.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/config/load-config.js';
import type { RouteConfig } from '../../src/config/schema.js';
import {
  attemptDelivery,
  type AttemptDeps,
  type AttemptOutcome,
} from '../../src/queue/attempt-delivery.js';
import { runJob } from '../../src/api/post-thread/delivery-job.js';
import type { DeliveryJob } from '../../src/api/post-thread/messages.js';
import type {
  JobResult,
  PayloadSink,
  PostContext,
} from '../../src/pipeline/payload-sink.js';
import {
  PermanentError,
  TemporaryError,
} from '../../src/errors/bridge-error.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { fromWire } from '../../src/errors/wire.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { DedupeStore } from '../../src/dedupe/dedupe-store.js';
import {
  HISTORY_LIMIT,
  newQueueEntry,
  type DeadInfo,
  type QueueEntry,
  type RouteStatus,
} from '../../src/spool/queue-entry.js';
import { attachmentPart, multipartMessage, textPart } from '../helpers/mime.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const DAY = 86_400_000;
const WINDOW = 7 * DAY;

const BASE = loadConfig({ env: { NODE_ENV: 'test' } });
const CONFIG: AttemptDeps['config'] = {
  mapping: BASE.mapping,
  delivery: {
    ...BASE.delivery,
    dedupeWindowMs: WINDOW,
    retry: {
      initialDelayMs: 1000,
      multiplier: 2,
      maxDelayMs: 60_000,
      maxAgeMs: DAY,
    },
  },
};

const ROUTES: RouteConfig[] = [
  {
    match: 'a@example.com',
    mailbox_id: 'mb-a',
    thread_from_subaddress: false,
    fields: {},
  },
  {
    match: 'b@example.com',
    mailbox_id: 'mb-b',
    thread_from_subaddress: false,
    fields: {},
  },
  // a second address to mailbox A: one dedupe key with the first route
  {
    match: 'a2@example.com',
    mailbox_id: 'mb-a',
    thread_from_subaddress: false,
    fields: {},
  },
];

const RAW = [
  'From: jane@example.net',
  'To: a@example.com, b@example.com',
  'Subject: unit',
  'Message-ID: < Unit-1@Example.NET >',
  '',
  'Hello.',
  '',
].join('\r\n');

type Script = (payload: ApiPayload) => Error | undefined;

/** A message mailparser gives up on: too many parts after an attachment. */
const UNPARSEABLE = [
  'From: jane@example.net',
  'Message-ID: < Unit-1@Example.NET >',
  'Content-Type: multipart/mixed; boundary="b"',
  '',
  '--b',
  'Content-Type: application/octet-stream',
  '',
  'x'.repeat(5000),
  ...Array.from(
    { length: 2000 },
    () => '--b\r\nContent-Type: text/plain\r\n\r\ny',
  ),
  '--b--',
  '',
].join('\r\n');

/** A sink that records each post and fails it as the test's script says. */
class ScriptedSink implements PayloadSink {
  readonly kind = 'api';
  readonly posts: Array<{ payload: ApiPayload; context: PostContext }> = [];

  constructor(protected readonly script: Script) {}

  async send(payload: ApiPayload, context: PostContext): Promise<void> {
    this.posts.push({ payload, context });
    const failure = this.script(payload);
    if (failure) throw failure;
  }

  async close(): Promise<void> {}
}

/**
 * A sink that also takes delivery jobs, as the post thread does: runJob, the worker's own code,
 * run here, each route's post recorded and judged by the script. `declines` makes it refuse
 * jobs (no usable thread); `transfers` detaches a job's raw bytes, as handing them over does.
 */
class JobSink extends ScriptedSink {
  readonly jobs: DeliveryJob[] = [];

  constructor(
    script: Script,
    private readonly options: { declines?: boolean; transfers?: boolean } = {},
  ) {
    super(script);
  }

  deliverJob(
    job: DeliveryJob,
    queueId: string,
  ): Promise<JobResult> | undefined {
    if (this.options.declines) return undefined;
    this.jobs.push(job);
    const raw =
      this.options.transfers && job.raw instanceof Uint8Array
        ? new Uint8Array(
            structuredClone(job.raw.buffer as ArrayBuffer, {
              transfer: [job.raw.buffer as ArrayBuffer],
            }),
          )
        : job.raw;
    return (async () => {
      const failures = new Map<number, Error | undefined>();
      let next = 0;
      const answer = await runJob(
        { ...job, raw },
        CONFIG.mapping,
        async (payload, key) => {
          const { index } = job.groups[next++]!;
          this.posts.push({
            payload,
            context: { idempotencyKey: key, queueId, routeIndex: index },
          });
          const failure = this.script(payload);
          failures.set(index, failure);
          // (the worker sees a taken POST as a 2xx: it decides duplicates within the job)
          return { status: failure ? 503 : 204 };
        },
      );
      if (answer.kind === 'unparsed') {
        return { kind: 'unparsed', error: fromWire(answer.error) };
      }
      return {
        kind: 'posted',
        messageId: answer.messageId,
        routes: answer.routes.map(r =>
          'duplicate' in r
            ? { index: r.index, duplicate: true }
            : { index: r.index, failure: failures.get(r.index) },
        ),
      };
    })();
  }
}

const t503 = () =>
  new TemporaryError('API HTTP 503', { api: { status: 503, errors: [] } });
const network = () => new TemporaryError('API network error ECONNREFUSED');
const plain = () => new Error('socket hang up');
const API_ERRORS = [{ code: 'invalid_mailbox', message: 'unknown' }];
const p400 = () =>
  new PermanentError('API HTTP 400', {
    api: { status: 400, errors: API_ERRORS },
  });
const c401 = () =>
  new TemporaryError('API HTTP 401: check api.url and api.token', {
    configError: true,
    api: { status: 401, errors: [] },
  });
/** The first post gets `failure`, the later ones are taken. */
const onceThen = (failure: () => Error) => {
  let failed = false;
  return () => (failed ? undefined : ((failed = true), failure()));
};
const r429 = (retryAt: number) => () =>
  new TemporaryError('API HTTP 429', {
    retryAt,
    api: { status: 429, errors: [] },
  });

// Every test runs twice: the attempt on this thread (a sink that only posts bodies), and as a
// delivery job (a sink that takes whole attempts, as the post thread does).
for (const mode of ['this thread', 'a delivery job'] as const) {
  describe(`attemptDelivery (${mode})`, () => {
    const newSink = (script: Script) =>
      mode === 'this thread' ? new ScriptedSink(script) : new JobSink(script);
    /** The attempt as the queue makes it of a fresh message: with its bytes, for a job. */
    const attempt = async (
      entry: QueueEntry,
      path: string,
      d: AttemptDeps,
      raw?: Buffer,
    ) =>
      attemptDelivery(
        entry,
        path,
        d,
        raw ??
          (mode === 'a delivery job' && existsSync(path)
            ? await readFile(path)
            : undefined),
      );
    let dir: string;
    let rawPath: string;
    let dedupe: DedupeStore;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mailbridge-attempt-'));
      rawPath = join(dir, 'message.eml');
      await writeFile(rawPath, RAW);
      dedupe = new DedupeStore(join(dir, 'dedupe'), WINDOW, () => NOW);
    });
    afterEach(async () => {
      await dedupe.close();
      await rm(dir, { recursive: true, force: true });
    });

    function entryFor(rcpt: string[]): QueueEntry {
      return newQueueEntry({
        envelope: {
          id: 'QID1',
          mailFrom: 'jane@example.net',
          rcptTo: rcpt,
          receivedAt: new Date(NOW).toISOString(),
        },
        groups: groupByRoute(rcpt, ROUTES),
        messageId: '< Unit-1@Example.NET >',
        size: RAW.length,
        now: NOW,
      });
    }

    function deps(sink: PayloadSink, random = 0.5): AttemptDeps {
      return {
        config: CONFIG,
        sink,
        dedupe,
        now: () => NOW,
        random: () => random,
      };
    }

    const key = (mailbox: string) =>
      DedupeStore.key('<Unit-1@Example.NET>', mailbox);

    interface Row {
      name: string;
      rcpt: string[];
      /** mailbox -> the failure its post gets (none: accepted) */
      fail?: Record<string, () => Error | undefined>;
      /** changes the fresh entry before the attempt (earlier attempts, age, statuses) */
      entry?: (entry: QueueEntry) => QueueEntry;
      /** runs before the attempt (e.g. a delivery already recorded) */
      before?: () => Promise<void>;
      outcome: AttemptOutcome;
      statuses: RouteStatus[];
      results: Record<string, string>;
      posted: string[];
      lastError: string | null;
      nextAttemptAt?: number;
      dead?: Partial<DeadInfo>;
      configError?: boolean;
      attempts?: number;
    }

    const AB = ['a@example.com', 'b@example.com'];
    const A = ['a@example.com'];

    const ROWS: Row[] = [
      {
        // regression (review): a job posted both, as it checked dedupe before posting any
        name: 'two routes to one mailbox: the second a duplicate of the first, not posted',
        rcpt: ['a@example.com', 'a2@example.com'],
        outcome: 'delivered',
        statuses: ['delivered', 'delivered'],
        results: { 0: 'delivered', 2: 'duplicate' },
        posted: ['mb-a'],
        lastError: null,
      },
      {
        name: 'two routes to one mailbox, the first refused for now: the second is posted',
        rcpt: ['a@example.com', 'a2@example.com'],
        fail: { 'mb-a': onceThen(t503) },
        outcome: 'retry',
        statuses: ['pending', 'delivered'],
        results: { 0: 'API HTTP 503', 2: 'delivered' },
        posted: ['mb-a', 'mb-a'],
        lastError: 'API HTTP 503',
        nextAttemptAt: NOW + 500,
      },
      {
        name: 'every route accepted -> delivered',
        rcpt: AB,
        outcome: 'delivered',
        statuses: ['delivered', 'delivered'],
        results: { 0: 'delivered', 1: 'delivered' },
        posted: ['mb-a', 'mb-b'],
        lastError: null,
      },
      {
        name: 'one route 503 -> retry that route only, after the backoff',
        rcpt: AB,
        fail: { 'mb-b': t503 },
        outcome: 'retry',
        statuses: ['delivered', 'pending'],
        results: { 0: 'delivered', 1: 'API HTTP 503' },
        posted: ['mb-a', 'mb-b'],
        lastError: 'API HTTP 503',
        nextAttemptAt: NOW + 500,
      },
      {
        name: 'network error -> retry',
        rcpt: A,
        fail: { 'mb-a': network },
        outcome: 'retry',
        statuses: ['pending'],
        results: { 0: 'API network error ECONNREFUSED' },
        posted: ['mb-a'],
        lastError: 'API network error ECONNREFUSED',
        nextAttemptAt: NOW + 500,
      },
      {
        name: 'an unknown error from the sink is temporary -> retry',
        rcpt: A,
        fail: { 'mb-a': plain },
        outcome: 'retry',
        statuses: ['pending'],
        results: { 0: 'socket hang up' },
        posted: ['mb-a'],
        lastError: 'socket hang up',
        nextAttemptAt: NOW + 500,
      },
      {
        name: '400 -> dead at once, with the status and the errors body',
        rcpt: A,
        fail: { 'mb-a': p400 },
        outcome: 'dead',
        statuses: ['failed'],
        results: { 0: 'API HTTP 400' },
        posted: ['mb-a'],
        lastError: 'API HTTP 400',
        dead: {
          reason: 'refused: API HTTP 400',
          status: 400,
          apiErrors: API_ERRORS,
        },
      },
      {
        name: '400 on A, 204 on B -> dead, B delivered',
        rcpt: AB,
        fail: { 'mb-a': p400 },
        outcome: 'dead',
        statuses: ['failed', 'delivered'],
        results: { 0: 'API HTTP 400', 1: 'delivered' },
        posted: ['mb-a', 'mb-b'],
        lastError: 'API HTTP 400',
        dead: { reason: 'refused: API HTTP 400', status: 400 },
      },
      {
        name: '400 on A, 503 on B -> retry B, A failed for good',
        rcpt: AB,
        fail: { 'mb-a': p400, 'mb-b': t503 },
        outcome: 'retry',
        statuses: ['failed', 'pending'],
        results: { 0: 'API HTTP 400', 1: 'API HTTP 503' },
        posted: ['mb-a', 'mb-b'],
        lastError: 'API HTTP 503',
        nextAttemptAt: NOW + 500,
      },
      {
        name: '401 -> retry, flagged as a configuration error',
        rcpt: A,
        fail: { 'mb-a': c401 },
        outcome: 'retry',
        statuses: ['pending'],
        results: { 0: 'API HTTP 401: check api.url and api.token' },
        posted: ['mb-a'],
        lastError: 'API HTTP 401: check api.url and api.token',
        nextAttemptAt: NOW + 500,
        configError: true,
      },
      {
        name: 'Retry-After later than the backoff wins',
        rcpt: A,
        fail: { 'mb-a': r429(NOW + 30_000) },
        outcome: 'retry',
        statuses: ['pending'],
        results: { 0: 'API HTTP 429' },
        posted: ['mb-a'],
        lastError: 'API HTTP 429',
        nextAttemptAt: NOW + 30_000,
      },
      {
        name: 'Retry-After earlier than the backoff: the backoff wins',
        rcpt: A,
        fail: { 'mb-a': r429(NOW + 100) },
        outcome: 'retry',
        statuses: ['pending'],
        results: { 0: 'API HTTP 429' },
        posted: ['mb-a'],
        lastError: 'API HTTP 429',
        nextAttemptAt: NOW + 500,
      },
      {
        name: 'Retry-After on two routes: the later one',
        rcpt: AB,
        fail: { 'mb-a': r429(NOW + 20_000), 'mb-b': r429(NOW + 10_000) },
        outcome: 'retry',
        statuses: ['pending', 'pending'],
        results: { 0: 'API HTTP 429', 1: 'API HTTP 429' },
        posted: ['mb-a', 'mb-b'],
        lastError: 'API HTTP 429',
        nextAttemptAt: NOW + 20_000,
      },
      {
        name: 'the backoff grows with the attempts (third: up to 4 s)',
        rcpt: A,
        fail: { 'mb-a': t503 },
        entry: e => ({ ...e, attempts: 2 }),
        outcome: 'retry',
        statuses: ['pending'],
        results: { 0: 'API HTTP 503' },
        posted: ['mb-a'],
        lastError: 'API HTTP 503',
        nextAttemptAt: NOW + 2000,
        attempts: 3,
      },
      {
        name: 'maxAgeMs reached with a route still failing -> dead, expired',
        rcpt: A,
        fail: { 'mb-a': t503 },
        entry: e => ({ ...e, createdAt: NOW - DAY, attempts: 9 }),
        outcome: 'dead',
        statuses: ['pending'],
        results: { 0: 'API HTTP 503' },
        posted: ['mb-a'],
        lastError: 'API HTTP 503',
        dead: {
          reason: 'expired after 10 attempts in 86400 s: API HTTP 503',
          status: 503,
        },
        attempts: 10,
      },
      {
        // regression: a long pause for a wrong token expired the messages that probed it
        name: 'maxAgeMs reached but the API says 401 -> still waiting, not dead',
        rcpt: A,
        fail: { 'mb-a': c401 },
        entry: e => ({ ...e, createdAt: NOW - DAY, attempts: 9 }),
        outcome: 'retry',
        statuses: ['pending'],
        results: { 0: 'API HTTP 401: check api.url and api.token' },
        posted: ['mb-a'],
        lastError: 'API HTTP 401: check api.url and api.token',
        nextAttemptAt: NOW + 30_000, // the backoff's cap, halved by the test's randomness
        configError: true,
        attempts: 10,
      },
      {
        name: 'maxAgeMs reached but delivered now -> delivered',
        rcpt: A,
        entry: e => ({ ...e, createdAt: NOW - 2 * DAY }),
        outcome: 'delivered',
        statuses: ['delivered'],
        results: { 0: 'delivered' },
        posted: ['mb-a'],
        lastError: null,
      },
      {
        name: 'a route delivered by an earlier attempt is not posted again',
        rcpt: AB,
        entry: e => ({
          ...e,
          attempts: 1,
          routes: [{ ...e.routes[0]!, status: 'delivered' }, e.routes[1]!],
        }),
        outcome: 'delivered',
        statuses: ['delivered', 'delivered'],
        results: { 1: 'delivered' },
        posted: ['mb-b'],
        lastError: null,
        attempts: 2,
      },
      {
        name: 'the pair was delivered within the dedupe window -> not posted',
        rcpt: A,
        before: () => dedupe.add(key('mb-a')),
        outcome: 'delivered',
        statuses: ['delivered'],
        results: { 0: 'duplicate' },
        posted: [],
        lastError: null,
      },
      {
        name: 'a delivery to another mailbox is no duplicate',
        rcpt: AB,
        before: () => dedupe.add(key('mb-a')),
        outcome: 'delivered',
        statuses: ['delivered', 'delivered'],
        results: { 0: 'duplicate', 1: 'delivered' },
        posted: ['mb-b'],
        lastError: null,
      },
      {
        name: 'a delivery older than the dedupe window is posted again',
        rcpt: A,
        before: () =>
          new DedupeStore(join(dir, 'dedupe'), WINDOW, () => NOW - WINDOW).add(
            key('mb-a'),
          ),
        outcome: 'delivered',
        statuses: ['delivered'],
        results: { 0: 'delivered' },
        posted: ['mb-a'],
        lastError: null,
      },
    ];

    for (const row of ROWS) {
      it(row.name, async () => {
        await row.before?.();
        const sink = newSink(p => row.fail?.[p.mailbox_id as string]?.());
        const entry = (row.entry ?? (e => e))(entryFor(row.rcpt));
        const unchanged = structuredClone(entry);
        const result = await attempt(entry, rawPath, deps(sink));

        expect(result.outcome).to.equal(row.outcome);
        expect(result.configError).to.equal(row.configError ?? false);
        expect(result.messageId).to.equal('<Unit-1@Example.NET>');
        expect(result.entry.routes.map(r => r.status)).to.deep.equal(
          row.statuses,
        );
        expect(result.entry.attempts).to.equal(row.attempts ?? 1);
        expect(result.entry.lastError).to.equal(row.lastError);
        expect(result.entry.history.at(-1)).to.deep.equal({
          at: new Date(NOW).toISOString(),
          results: row.results,
        });
        expect(sink.posts.map(p => p.payload.mailbox_id)).to.deep.equal(
          row.posted,
        );
        if (row.nextAttemptAt !== undefined) {
          expect(result.entry.nextAttemptAt).to.equal(row.nextAttemptAt);
        }
        if (row.dead) {
          expect(result.entry.dead).to.include({
            at: new Date(NOW).toISOString(),
            reason: row.dead.reason,
            status: row.dead.status,
          });
          if (row.dead.apiErrors) {
            expect(result.entry.dead?.apiErrors).to.deep.equal(
              row.dead.apiErrors,
            );
          }
        } else {
          expect(result.entry.dead).to.equal(undefined);
        }
        // the entry given is left as it was: the result is a new one
        expect(entry).to.deep.equal(unchanged);
        // as a job: one, if anything was to be posted
        if (sink instanceof JobSink) {
          expect(sink.jobs).to.have.length(row.posted.length > 0 ? 1 : 0);
        }
      });
    }

    it('posts each route with its queue id, route index and a stable idempotency key', async () => {
      const sink = newSink(() => undefined);
      await attempt(entryFor(AB), rawPath, deps(sink));
      const again = newSink(() => undefined);
      await attempt(entryFor(AB), rawPath, deps(again));
      expect(sink.posts.map(p => p.context.queueId)).to.deep.equal([
        'QID1',
        'QID1',
      ]);
      expect(sink.posts.map(p => p.context.routeIndex)).to.deep.equal([0, 1]);
      const [a, b] = sink.posts.map(p => p.context.idempotencyKey);
      expect(a).to.match(/^[0-9a-f]{64}$/);
      expect(a).not.to.equal(b);
      expect(sink.posts[0]?.payload).to.include({
        ext_msg_id: '<Unit-1@Example.NET>',
        subject: 'unit',
        mailbox_id: 'mb-a',
      });
      // the second attempt found both deliveries recorded: nothing posted again
      expect(again.posts).to.deep.equal([]);
    });

    it('records each delivery, so the next attempt of the same pair is a duplicate', async () => {
      const first = newSink(() => undefined);
      const result = await attempt(entryFor(A), rawPath, deps(first));
      expect(result.outcome).to.equal('delivered');
      expect(await dedupe.has(key('mb-a'))).to.equal(true);
      expect(await dedupe.has(key('mb-b'))).to.equal(false);
    });

    it('a delivery record that cannot be written does not fail the attempt', async () => {
      // the dedupe folder cannot be created: a file stands where it should be
      dedupe = new DedupeStore(join(rawPath, 'dedupe'), WINDOW, () => NOW);
      const sink = newSink(() => undefined);
      const result = await attempt(entryFor(AB), rawPath, deps(sink));
      expect(result.outcome).to.equal('delivered');
      expect(sink.posts.map(p => p.payload.mailbox_id)).to.deep.equal([
        'mb-a',
        'mb-b',
      ]);
    });

    it('a refusal seen by an earlier attempt keeps its status and errors when the message dies', async () => {
      const sink = newSink(p =>
        p.mailbox_id === 'mb-a'
          ? p400()
          : p.mailbox_id === 'mb-b'
            ? t503()
            : undefined,
      );
      const first = await attempt(entryFor(AB), rawPath, deps(sink));
      expect(first.outcome).to.equal('retry');

      const later = newSink(() => undefined);
      const second = await attempt(first.entry, rawPath, deps(later));
      expect(later.posts.map(p => p.payload.mailbox_id)).to.deep.equal([
        'mb-b',
      ]);
      expect(second.outcome).to.equal('dead');
      expect(second.entry.routes.map(r => r.status)).to.deep.equal([
        'failed',
        'delivered',
      ]);
      expect(second.entry.dead?.reason).to.equal('refused: API HTTP 400');
      expect(second.entry.dead?.status).to.equal(400);
      expect(second.entry.dead?.apiErrors).to.deep.equal(API_ERRORS);
      expect(second.entry.history).to.have.length(2);
    });

    it(`keeps at most ${HISTORY_LIMIT} attempts in the history, the newest last`, async () => {
      const old = Array.from({ length: HISTORY_LIMIT }, (_, i) => ({
        at: new Date(NOW - (HISTORY_LIMIT - i) * 1000).toISOString(),
        results: { 0: `HTTP 50${i % 10}` },
      }));
      const entry = { ...entryFor(A), attempts: 70, history: old };
      const sink = newSink(t503);
      const result = await attempt(entry, rawPath, deps(sink));
      expect(result.entry.attempts).to.equal(71);
      expect(result.entry.history).to.have.length(HISTORY_LIMIT);
      expect(result.entry.history[0]).to.deep.equal(old[1]);
      expect(result.entry.history.at(-1)).to.deep.equal({
        at: new Date(NOW).toISOString(),
        results: { 0: 'API HTTP 503' },
      });
    });

    it('full jitter: the delay follows the random value', async () => {
      const delays: number[] = [];
      for (const random of [0, 0.25, 0.999]) {
        const sink = newSink(t503);
        const result = await attempt(entryFor(A), rawPath, deps(sink, random));
        delays.push(result.entry.nextAttemptAt - NOW);
      }
      expect(delays).to.deep.equal([0, 250, 999]);
    });

    // regression: a vanished raw file was retried as a "local error" until maxAgeMs (5 days),
    // while recovery at start buries the same case at once
    it('the raw message gone: dead at once with its reason, nothing posted', async () => {
      const sink = newSink(() => undefined);
      const result = await attempt(
        entryFor(A),
        join(dir, 'missing.eml'),
        deps(sink),
      );
      expect(result.outcome).to.equal('dead');
      expect(result.entry.lastError).to.equal(
        'raw message missing from the spool',
      );
      expect(result.entry.routes[0]?.status).to.equal('failed');
      expect(sink.posts).to.deep.equal([]);
    });

    describe('attachment files: in the spool tmp/ during the posts, gone after the attempt', () => {
      const WITH_ATTACHMENT = multipartMessage(
        {
          From: 'jane@example.net',
          To: 'a@example.com, b@example.com',
          Subject: 'unit',
          'Message-ID': '< Unit-1@Example.NET >',
        },
        [textPart('Hello.'), attachmentPart('a.bin', 'attachment bytes')],
      );

      /** A spool-shaped folder: the raw message at <spool>/msg/QID1.eml, and <spool>/tmp/. */
      async function spooled(): Promise<{ raw: string; tmp: string }> {
        const spool = join(dir, 'spool');
        await mkdir(join(spool, 'msg'), { recursive: true });
        await mkdir(join(spool, 'tmp'));
        const raw = join(spool, 'msg', 'QID1.eml');
        await writeFile(raw, WITH_ATTACHMENT);
        return { raw, tmp: join(spool, 'tmp') };
      }

      /** The folder of each posted attachment file, and whether it existed at post time. */
      function seen(sink: ScriptedSink, exists: boolean[]) {
        return sink.posts.map((p, i) => ({
          folder: dirname(p.payload.attachments?.[0]?.file.path ?? ''),
          existed: exists[i],
        }));
      }

      const rows: Array<{ name: string; fail?: () => Error; outcome: string }> =
        [
          { name: 'delivered', outcome: 'delivered' },
          { name: 'failed (503)', fail: t503, outcome: 'retry' },
          { name: 'refused (400)', fail: p400, outcome: 'dead' },
        ];
      for (const row of rows) {
        it(row.name, async () => {
          const { raw, tmp } = await spooled();
          const exists: boolean[] = [];
          const sink = newSink(p => {
            exists.push(existsSync(p.attachments?.[0]?.file.path ?? ''));
            return row.fail?.();
          });
          const result = await attempt(entryFor(AB), raw, deps(sink));
          expect(result.outcome).to.equal(row.outcome);
          // both routes share the one parsed file
          expect(seen(sink, exists)).to.deep.equal([
            { folder: tmp, existed: true },
            { folder: tmp, existed: true },
          ]);
          expect(sink.posts[0]?.payload.attachments?.[0]?.file).to.deep.equal(
            sink.posts[1]?.payload.attachments?.[0]?.file,
          );
          expect(await readdir(tmp)).to.deep.equal([]);
        });
      }

      it('the attempt throws (the dedupe store fails)', async () => {
        const { raw, tmp } = await spooled();
        const sink = newSink(() => undefined);
        const broken = new Error('dedupe store unreadable');
        dedupe.has = async () => {
          // (every lane checks for duplicates before it parses)
          expect(await readdir(tmp)).to.have.length(0);
          throw broken;
        };
        let error: unknown;
        await attempt(entryFor(AB), raw, deps(sink)).catch(
          (err: unknown) => (error = err),
        );
        expect(error).to.equal(broken);
        expect(await readdir(tmp)).to.deep.equal([]);
      });

      it('deps.attachmentDir wins over the spool tmp/', async () => {
        const { raw, tmp } = await spooled();
        const other = join(dir, 'other');
        await mkdir(other);
        const folders: string[] = [];
        const sink = newSink(p => {
          folders.push(dirname(p.attachments?.[0]?.file.path ?? ''));
          return undefined;
        });
        await attempt(entryFor(A), raw, {
          ...deps(sink),
          attachmentDir: other,
        });
        expect(folders).to.deep.equal([other]);
        expect(await readdir(other)).to.deep.equal([]);
        expect(await readdir(tmp)).to.deep.equal([]);
      });
    });

    if (mode === 'a delivery job') {
      describe('what goes into a job, and when the attempt is made here instead', () => {
        it('routes already delivered under the Message-ID found at accept time are left out', async () => {
          await dedupe.add(key('mb-a'));
          const sink = new JobSink(() => undefined);
          const result = await attempt(entryFor(AB), rawPath, deps(sink));
          expect(sink.jobs.map(j => j.groups.map(g => g.index))).to.deep.equal([
            [1],
          ]);
          expect(result.entry.history.at(-1)?.results).to.deep.equal({
            0: 'duplicate',
            1: 'delivered',
          });
          expect(await dedupe.has(key('mb-b'))).to.equal(true);
        });

        it('every route a duplicate: no job at all', async () => {
          await dedupe.add(key('mb-a'));
          const sink = new JobSink(() => undefined);
          const result = await attempt(entryFor(A), rawPath, deps(sink));
          expect(result.outcome).to.equal('delivered');
          expect(sink.jobs).to.deep.equal([]);
        });

        // duplicates are keyed by what was found at accept time, in every lane: the job
        // posts what that key has no record of, and the parse no longer sends it back
        it('the parsed Message-ID is not the one found at accept time: keyed by the accept-time id, posted by the job', async () => {
          await dedupe.add(DedupeStore.key('<other@example.net>', 'mb-a'));
          const sink = new JobSink(() => undefined, { transfers: true });
          const entry = { ...entryFor(AB), messageId: '<other@example.net>' };
          const raw = Buffer.alloc(RAW.length, RAW);
          const result = await attempt(entry, rawPath, deps(sink), raw);
          expect(sink.jobs).to.have.length(1);
          expect(raw.buffer.byteLength).to.equal(0);
          expect(result.messageId).to.equal('<Unit-1@Example.NET>');
          expect(result.entry.history.at(-1)?.results).to.deep.equal({
            0: 'duplicate',
            1: 'delivered',
          });
          expect(sink.posts.map(p => p.payload.mailbox_id)).to.deep.equal([
            'mb-b',
          ]);
        });

        it('no Message-ID and no fingerprint (an entry of an older release): posted by the job, never skipped', async () => {
          const sink = new JobSink(() => undefined);
          const entry = { ...entryFor(A), messageId: null };
          const result = await attempt(entry, rawPath, deps(sink));
          expect(result.outcome).to.equal('delivered');
          expect(sink.jobs).to.have.length(1);
          expect(sink.posts).to.have.length(1);
        });

        // parsing never on the thread that answers SMTP (issue 16, defect 2): a large message
        // or a retry, read from its file, is parsed by the post thread too
        it('a message in a file (no bytes in memory): a job naming the file, its offset and length', async () => {
          const sink = new JobSink(() => undefined);
          const entry = { ...entryFor(AB), rawOffset: 0 };
          const result = await attemptDelivery(entry, rawPath, deps(sink));
          expect(result.outcome).to.equal('delivered');
          expect(sink.jobs.map(j => j.raw)).to.deep.equal([
            { path: rawPath, start: 0, length: undefined },
          ]);
          expect(sink.posts.map(p => p.payload.mailbox_id)).to.deep.equal([
            'mb-a',
            'mb-b',
          ]);
        });

        it('a sink that declines the job (no usable thread): attempted here, from the bytes given', async () => {
          const sink = new JobSink(() => undefined, { declines: true });
          // the file is gone: only the bytes given can deliver it
          const raw = Buffer.from(RAW);
          const result = await attempt(
            entryFor(A),
            join(dir, 'missing.eml'),
            deps(sink),
            raw,
          );
          expect(result.outcome).to.equal('delivered');
          expect(sink.posts.map(p => p.payload.mailbox_id)).to.deep.equal([
            'mb-a',
          ]);
        });

        it('bytes that cannot be parsed: dead at once, as when parsed here', async () => {
          await writeFile(rawPath, UNPARSEABLE);
          const sink = new JobSink(() => undefined);
          const result = await attempt(entryFor(AB), rawPath, deps(sink));
          expect(sink.jobs).to.have.length(1);
          expect(result.outcome).to.equal('dead');
          expect(result.entry.routes.map(r => r.status)).to.deep.equal([
            'failed',
            'failed',
          ]);
          expect(result.entry.lastError).to.equal(
            'message could not be parsed: Max allowed child nodes exceeded',
          );
          expect(result.entry.dead?.reason).to.equal(
            'refused: message could not be parsed: Max allowed child nodes exceeded',
          );
          expect(sink.posts).to.deep.equal([]);
        });
      });
    }
  });
}
