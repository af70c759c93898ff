// The post thread's heap limit (api/post-thread/heap-limit.ts): what it is for a message size,
// and what a job that runs past it comes to: the worker stopped, its requests failed as
// temporary failures (retried later, never lost), and the next request served by a new worker.
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load-config.js';
import { PostThread } from '../../src/api/post-thread/post-thread.js';
import type { DeliveryJob } from '../../src/api/post-thread/messages.js';
import {
  MIN_THREAD_HEAP_MB,
  threadHeapLimitMb,
} from '../../src/api/post-thread/heap-limit.js';
import {
  POST_THREAD_SEMI_SPACE_MB,
  youngGenerationMb,
} from '../../src/api/post-thread/young-generation.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { apiAt } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import { nodeScript, sourceUrl } from '../helpers/node-script.js';
import { makeMessage } from '../helpers/smtp-client.js';

const MIB = 1024 * 1024;
const ROUTES = [{ match: '*', mailbox_id: 'mb' }];
const CONFIG = loadConfig({
  env: { NODE_ENV: 'test' },
  overrides: { routes: ROUTES },
});

function job(id: string, body: string): DeliveryJob {
  return {
    raw: Buffer.from(
      makeMessage(
        {
          From: 'jane@example.net',
          To: 'help@example.com',
          Subject: id,
          'Message-ID': `<${id}@example.net>`,
        },
        body,
      ),
    ),
    envelope: {
      id,
      mailFrom: 'jane@example.net',
      rcptTo: ['help@example.com'],
      receivedAt: new Date().toISOString(),
    },
    groups: groupByRoute(['help@example.com'], CONFIG.routes),
  };
}

describe('the post thread heap limit', () => {
  it('is sized for two large messages parsed at once, and never below its floor', () => {
    const table: Array<
      [maxMessageSize: number, largeAtOnce: number, mb: number]
    > = [
      [0, 2, 256],
      [4 * MIB, 2, MIN_THREAD_HEAP_MB],
      // 2 x 10 x 6 + 128 = 248: below the floor
      [10 * MIB, 2, MIN_THREAD_HEAP_MB],
      [11 * MIB, 2, 260],
      // the default smtp.maxMessageSize: 2 x 25 x 6 + 128
      [25 * MIB, 2, 428],
      // 2 x 40 x 6 + 128
      [40 * MIB, 2, 608],
      // a size that is no whole MiB counts as the next one
      [40 * MIB + 1, 2, 620],
      [100 * MIB, 1, 728],
    ];
    for (const [size, atOnce, mb] of table) {
      expect(threadHeapLimitMb(size, atOnce), `${size}`).to.equal(mb);
    }
  });

  it("the worker's limits under npm start's --max-semi-space-size=1: the old generation's, and its own young generation (young-generation.ts)", async function () {
    this.timeout(60_000);
    // a worker's heap_size_limit is its old generation's limit plus its young generation's
    const script = `
      const { PostThread } = await import(${JSON.stringify(sourceUrl('src/api/post-thread/post-thread.ts'))});
      const { loadConfig } = await import(${JSON.stringify(sourceUrl('src/config/load-config.ts'))});
      const config = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { routes: [{ match: '*', mailbox_id: 'mb' }] } });
      const thread = new PostThread({ ...config.api, workerThread: true }, () => {}, { mapping: config.mapping, heapLimitMb: 48 });
      // an idle worker is unref()ed: the question to it must not be all that keeps this alive
      const alive = setInterval(() => {}, 60_000);
      await thread.ready();
      const { heap_size_limit } = await thread.worker.getHeapStatistics();
      await thread.close();
      clearInterval(alive);
      process.stdout.write(String(heap_size_limit / (1024 * 1024)));
    `;
    const limitMb = Number(
      await nodeScript(['--max-semi-space-size=1'], script),
    );
    expect(limitMb).to.equal(48 + youngGenerationMb(POST_THREAD_SEMI_SPACE_MB));
  });

  describe('a job past the limit', () => {
    let api: FakeApi;
    beforeEach(async () => (api = await startFakeApi()));
    afterEach(async () => await api.close());

    it('stops the worker: the job fails as a temporary failure, and a new worker takes the next', async () => {
      const failures: string[] = [];
      const thread = new PostThread(
        { ...CONFIG.api, ...apiAt(api.url), workerThread: true },
        err => failures.push(err.message),
        { mapping: CONFIG.mapping, heapLimitMb: 48 },
      );
      try {
        await thread.ready();
        // a text body decoded, rendered as HTML and serialised: its text alone nearly the 48 MB limit, its HTML rendering past it
        const line = 'a line of text for the heap limit <&>\r\n';
        const big = job(
          'BIG1',
          line.repeat(Math.ceil((40 * MIB) / line.length)),
        );
        const answer = await thread.deliver(big);
        expect(answer).to.deep.equal({
          kind: 'posted',
          routes: [{ index: 0, posted: { code: 'EPOSTTHREAD' } }],
        });
        expect(failures).to.deep.equal([
          'Worker terminated due to reaching memory limit: JS heap out of memory',
          'post thread exited (code 1)',
        ]);
        expect(api.requests).to.have.length(0);

        const small = await thread.deliver(job('SMALL1', 'hello'));
        expect(small).to.deep.include({ kind: 'posted' });
        expect(api.requests).to.have.length(1);
        expect(api.requests[0]!.body.ext_msg_id).to.equal(
          '<SMALL1@example.net>',
        );
      } finally {
        await thread.close();
      }
    });
  });
});
