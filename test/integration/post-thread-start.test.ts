// The post thread (api.workerThread), regressions from a review: it starts whatever the working
// directory (tsx was resolved from it, under the sources), and a POST hands it only the body's
// bytes (a small Buffer is a slice of a shared 8 KiB pool, all of which postMessage copied).
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { loadConfig } from '../../src/config/load-config.js';
import { ApiClient } from '../../src/deliver/api-client.js';
import type { PostRequest } from '../../src/deliver/post-thread.js';
import { createLogger } from '../../src/observability/logger.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';

const CONTEXT = { idempotencyKey: 'k1', queueId: 'Q1', routeIndex: 0 };

describe('ApiClient: the post thread starts anywhere, and gets only the body', () => {
  let api: FakeApi;
  let client: ApiClient | undefined;

  function newClient(): ApiClient {
    const config = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: {
        api: { url: api.url, token: 't', timeoutMs: 5000, workerThread: true },
      },
    });
    return new ApiClient(
      config.api,
      createLogger({
        level: 'error',
        stream: new Writable({ write: (_c, _e, done) => done() }),
      }),
    );
  }

  function workerOf(c: ApiClient): Worker | undefined {
    return (c['thread'] as unknown as { worker?: Worker } | undefined)?.worker;
  }

  beforeEach(async () => {
    api = await startFakeApi();
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await api.close();
  });

  // post-thread.ts:74-76 loads tsx with import('tsx/esm/api') from an eval'd worker, which
  // resolves against the working directory, not the sources: run from the sources anywhere but
  // the project folder, every thread dies at start. ready() resolves anyway (the daemon starts),
  // and every Buffer body then fails as EPOSTTHREAD, a new thread per POST, with no fallback to
  // the main thread: the mail is retried until it is dead-lettered.
  it('posts from the thread whatever the working directory', async () => {
    const cwd = process.cwd();
    const elsewhere = await mkdtemp(join(tmpdir(), 'mailbridge-cwd-'));
    process.chdir(elsewhere);
    try {
      client = newClient();
      await client.ready();
      // the thread itself (a thread that cannot start is replaced by posting from here)
      expect(workerOf(client)).to.not.equal(undefined);
      await client.send(
        { ext_msg_id: '<cwd@example.com>', content: 'Hello.' },
        CONTEXT,
      );
      expect(api.requests).to.have.length(1);
    } finally {
      process.chdir(cwd);
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  // api-client.ts requestBody -> Buffer.from(string) takes bodies under 4 KiB from Node's
  // 8 KiB pool; postMessage (post-thread.ts:51) structured-clones the Buffer's whole
  // ArrayBuffer, so a 2 KiB body sends 8 KiB (other messages' bytes included) to the thread.
  it('sends the thread only the bytes of the body', async () => {
    client = newClient();
    await client.ready();
    const worker = workerOf(client)!;
    const sent: PostRequest[] = [];
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (message: unknown, ...rest: never[]) => {
      sent.push(message as PostRequest);
      post(message, ...rest);
    };
    await client.send(
      { ext_msg_id: '<copy@example.com>', content: 'x'.repeat(2000) },
      CONTEXT,
    );
    expect(api.requests).to.have.length(1);
    const body = sent[0]!.body;
    // what crosses the thread is the ArrayBuffer, not the view
    expect(body.buffer.byteLength).to.equal(body.byteLength);
  });
});
