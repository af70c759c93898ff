// Delivery jobs: whole attempts (parse, map, post) run on the post thread. The real worker
// against a stand-in API: each route's answer judged as a POST from the main thread would be,
// a thread that dies mid-job, no job without the mapping; and, end to end, a message whose
// Message-ID the accept-time sniff reads otherwise than the parser.
import { expect } from 'chai';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config.js';
import { ApiClient } from '../../src/api/api-client.js';
import { PostThread } from '../../src/api/post-thread/post-thread.js';
import type { DeliveryJob } from '../../src/api/post-thread/messages.js';
import {
  PermanentError,
  TemporaryError,
} from '../../src/errors/bridge-error.js';
import { createLogger } from '../../src/observability/logger.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { apiAt, startBridge, type TestBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import { attachmentPart, multipartMessage } from '../helpers/mime.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';
import { silentWorker } from '../helpers/silent-worker.js';

const ROUTES = [
  { match: 'a@example.com', mailbox_id: 'mb-a' },
  { match: 'b@example.com', mailbox_id: 'mb-b' },
];
const CONFIG = loadConfig({
  env: { NODE_ENV: 'test' },
  overrides: { routes: ROUTES },
});
const AB = ['a@example.com', 'b@example.com'];

const RAW = makeMessage({
  From: 'jane@example.net',
  To: 'a@example.com, b@example.com',
  Subject: 'job',
  'Message-ID': '<job-1@example.net>',
});

const WITH_ATTACHMENT = multipartMessage(
  { From: 'jane@example.net', 'Message-ID': '<job-1@example.net>' },
  [attachmentPart('a.bin', 'attachment bytes')],
);

describe('delivery jobs on the post thread', () => {
  let api: FakeApi;
  let client: ApiClient | undefined;

  function newClient(mapping = true): ApiClient {
    return new ApiClient(
      { ...CONFIG.api, ...apiAt(api.url), workerThread: true },
      createLogger({
        level: 'error',
        stream: new Writable({ write: (_c, _e, done) => done() }),
      }),
      Date.now,
      mapping ? CONFIG.mapping : undefined,
    );
  }

  /** A job for both routes, its raw bytes a small Buffer (a slice of Node's shared pool). */
  function job(raw: string = RAW): DeliveryJob {
    return {
      raw: Buffer.from(raw),
      envelope: {
        id: 'JOB1',
        mailFrom: 'jane@example.net',
        rcptTo: AB,
        receivedAt: new Date().toISOString(),
      },
      groups: groupByRoute(AB, CONFIG.routes),
    };
  }

  beforeEach(async () => {
    api = await startFakeApi();
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await api.close();
  });

  it('parses, maps and posts each route there; each answer judged here (400 permanent, 204 taken)', async () => {
    client = newClient();
    api.respondWith(r =>
      r.body.mailbox_id === 'mb-a'
        ? { status: 400, body: { errors: [{ code: 'bad', message: 'no' }] } }
        : { status: 204 },
    );
    const result = await client.deliverJob(job(), 'JOB1');
    expect(result?.kind).to.equal('posted');
    const routes = result?.kind === 'posted' ? result.routes : [];
    expect(routes.map(r => r.index)).to.deep.equal([0, 1]);
    expect(routes[0]?.failure).to.be.instanceOf(PermanentError);
    expect((routes[0]?.failure as PermanentError).api).to.deep.equal({
      status: 400,
      errors: [
        {
          code: 'bad',
          message: 'no',
          deprecated: false,
          will_be_deprecated: false,
        },
      ],
    });
    expect(routes[1]?.failure).to.equal(undefined);
    expect(api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-a',
      'mb-b',
    ]);
    expect(api.requests[1]?.body).to.include({
      ext_msg_id: '<job-1@example.net>',
      subject: 'job',
    });
    const keys = api.requests.map(r => r.headers['idempotency-key']);
    expect(keys[0]).to.match(/^[0-9a-f]{64}$/);
    expect(keys[0]).to.not.equal(keys[1]);
    expect(api.requests[0]?.headers.authorization).to.equal(
      'Bearer test-token-123',
    );
  });

  // the job no longer compares Message-IDs (the main thread keys duplicates by the one found
  // at accept time): it tells the parsed one, for the outcome line
  it('answers the parsed Message-ID with the routes it posted', async () => {
    client = newClient();
    const result = await client.deliverJob(job(), 'JOB1');
    expect(result).to.deep.include({
      kind: 'posted',
      messageId: '<job-1@example.net>',
    });
    expect(api.requests).to.have.length(2);
  });

  // a burst of large messages must not be parsed all at once (issue 16, defect 2): each may
  // hold tens of MiB while its parts are decoded
  it('large messages in files: at most two parsed at once, the others wait their turn', async () => {
    client = new ApiClient(
      { ...CONFIG.api, ...apiAt(api.url), workerThread: true, concurrency: 4 },
      createLogger({
        level: 'error',
        stream: new Writable({ write: (_c, _e, done) => done() }),
      }),
      Date.now,
      CONFIG.mapping,
    );
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-large-'));
    try {
      const path = join(dir, 'large.eml');
      await writeFile(path, RAW);
      api.setDefault({ status: 204, stall: true });
      const one = (n: number) =>
        client!.deliverJob(
          {
            ...job(),
            groups: groupByRoute(['a@example.com'], CONFIG.routes),
            raw: { path },
            size: 2 * 1024 * 1024,
          },
          `LARGE${n}`,
        )!;
      const running = [one(1), one(2), one(3)];
      await api.waitForRequests(2);
      const waiting = (
        client as unknown as { largeParses: { waiting: unknown[] } }
      ).largeParses.waiting;
      expect(waiting).to.have.length(1);
      api.setDefault({ status: 204 });
      api.releaseStalled();
      const results = await Promise.all(running);
      expect(results.map(r => r.kind)).to.deep.equal([
        'posted',
        'posted',
        'posted',
      ]);
      expect(api.requests).to.have.length(3);
      expect(api.maxInFlight).to.equal(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an attachment file that cannot be written: unparsed, a temporary error; nothing posted', async () => {
    client = newClient();
    const result = await client.deliverJob(
      { ...job(WITH_ATTACHMENT), attachmentDir: '/nonexistent/mailbridge' },
      'JOB1',
    );
    expect(result?.kind).to.equal('unparsed');
    if (result?.kind === 'unparsed') {
      expect(result.error).to.be.instanceOf(TemporaryError);
      expect((result.error as Error).message).to.match(/ENOENT/);
    }
    expect(api.requests).to.deep.equal([]);
  });

  it('the thread dies mid-job: every route of the job fails as temporary; its attachment files are removed', async () => {
    client = newClient();
    const tmp = await mkdtemp(join(tmpdir(), 'mailbridge-job-'));
    // another message's file in the same folder stays
    await writeFile(join(tmp, 'att-OTHER-0123456789abcdef-1.bin'), 'x');
    await client.ready();
    const worker = (
      client['thread'] as unknown as {
        worker: { terminate(): Promise<number> };
      }
    ).worker;
    // the stand-in holds the first POST: the job is then surely under way
    api.setDefault({ status: 204, stall: true });
    const running = client.deliverJob(
      { ...job(WITH_ATTACHMENT), attachmentDir: tmp },
      'JOB1',
    )!;
    await api.waitForRequests(1);
    expect(await readdir(tmp)).to.have.length(2);
    await worker.terminate();
    const result = await running;
    expect(await readdir(tmp)).to.deep.equal([
      'att-OTHER-0123456789abcdef-1.bin',
    ]);
    await rm(tmp, { recursive: true, force: true });
    expect(result.kind).to.equal('posted');
    const routes = result.kind === 'posted' ? result.routes : [];
    expect(routes.map(r => r.index)).to.deep.equal([0, 1]);
    for (const { failure } of routes) {
      expect(failure).to.be.instanceOf(TemporaryError);
      expect((failure as Error).message).to.match(/EPOSTTHREAD/);
    }
  });

  it('a thread that stops answering: every route of the job times out, and its attachment files are removed', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'mailbridge-job-'));
    // what the stalled job had written, and another message's file
    await writeFile(join(tmp, 'att-JOB1-0123456789abcdef-1.bin'), 'x');
    await writeFile(join(tmp, 'att-OTHER-0123456789abcdef-1.bin'), 'x');
    // ready, then silent: it takes jobs and never answers
    const thread = new PostThread(
      { ...CONFIG.api, ...apiAt(api.url), timeoutMs: 50, workerThread: true },
      () => undefined,
      {
        mapping: CONFIG.mapping,
        jobParseAllowanceMs: 50,
        spawn: silentWorker,
      },
    );
    try {
      await thread.ready();
      const answer = await thread.deliver({ ...job(), attachmentDir: tmp });
      expect(answer).to.deep.equal({
        kind: 'posted',
        routes: [
          { index: 0, posted: { code: 'ETIMEDOUT' } },
          { index: 1, posted: { code: 'ETIMEDOUT' } },
        ],
      });
      expect(await readdir(tmp)).to.deep.equal([
        'att-OTHER-0123456789abcdef-1.bin',
      ]);
    } finally {
      await thread.close();
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('no job without the mapping, nor without a usable thread: the caller attempts itself', async () => {
    client = newClient(false);
    expect(client.deliverJob(job(), 'JOB1')).to.equal(undefined);
    await client.close();
    client = newClient();
    client['thread']!['broken'] = true;
    expect(client.deliverJob(job(), 'JOB1')).to.equal(undefined);
    expect(api.requests).to.deep.equal([]);
  });

  describe('end to end', () => {
    let bridge: TestBridge | undefined;
    afterEach(async () => {
      await bridge?.close();
      bridge = undefined;
    });

    // Regression (review): a job checked dedupe for all its routes before posting any, so two
    // routes to one mailbox (one dedupe key) were both posted; on the main thread the second
    // finds the first's record and is a duplicate.
    for (const workerThread of [false, true]) {
      it(`two routes to one mailbox, one message: one POST (api.workerThread ${workerThread})`, async () => {
        bridge = await startBridge({
          api: apiAt(api.url, { workerThread }),
          routes: [
            { match: 'sales@example.com', mailbox_id: 'mb-shared' },
            { match: 'info@example.com', mailbox_id: 'mb-shared' },
          ],
        });
        const to = ['sales@example.com', 'info@example.com'];
        const sent = await sendRaw({
          port: bridge.smtpPort,
          to,
          raw: makeMessage({
            From: 'jane@example.net',
            To: to.join(', '),
            Subject: 'shared',
            'Message-ID': `<shared-${workerThread}@example.net>`,
          }),
        });
        expect(sent.code, sent.response).to.equal(250);
        const id = queueIdOf(sent.response);
        await bridge.waitForLog(
          l => l.queueId === id && l.message === 'message delivered',
        );
        expect(api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
          'mb-shared',
        ]);
      });
    }

    // The accept-time sniff keeps an RFC 2047 encoded Message-ID as written; the parser decodes
    // it. The job finds the other id and posts nothing; the attempt is made on the main thread,
    // under the parsed id, which is also the one recorded against a second copy.
    it('an encoded Message-ID: posted once under the decoded id; a second copy is a duplicate', async () => {
      bridge = await startBridge({
        api: apiAt(api.url),
        routes: ROUTES,
      });
      const raw = makeMessage({
        From: 'jane@example.net',
        To: 'a@example.com',
        Subject: 'encoded id',
        'Message-ID': '=?utf-8?Q?=3Cencoded-1@example.net=3E?=',
      });
      const delivered = (id: string) =>
        bridge!.waitForLog(
          l =>
            l.stage === 'deliver' &&
            l.queueId === id &&
            l.message === 'message delivered',
        );
      for (const copy of [1, 2]) {
        const sent = await sendRaw({
          port: bridge.smtpPort,
          to: ['a@example.com'],
          raw,
        });
        expect(sent.code, `copy ${copy}`).to.equal(250);
        await delivered(queueIdOf(sent.response));
      }
      expect(api.requests).to.have.length(1);
      expect(api.requests[0]?.body.ext_msg_id).to.equal(
        '<encoded-1@example.net>',
      );
    });
  });
});
