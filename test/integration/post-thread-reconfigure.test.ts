// PostThread.reconfigure (a rotated token): a request in flight on the old worker is answered
// by it, not cut off; requests from then on go to a new worker with the new configuration; the
// old worker is stopped once it has nothing left.
import { expect } from 'chai';
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { loadConfig } from '../../src/config/load-config.js';
import { PostThread } from '../../src/api/post-thread/post-thread.js';
import { apiAt } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';

const CONFIG = loadConfig({ env: { NODE_ENV: 'test' } });

describe('the post thread, reconfigured', () => {
  let api: FakeApi;
  beforeEach(async () => (api = await startFakeApi()));
  afterEach(async () => await api.close());

  it('lets the old worker answer what it has, then stops it; new requests carry the new token', async () => {
    const failures: string[] = [];
    const config = {
      ...CONFIG.api,
      ...apiAt(api.url, { token: 'old-token' }),
      workerThread: true,
    };
    const thread = new PostThread(config, err => failures.push(err.message));
    try {
      await thread.ready();
      const old = (thread as unknown as { worker: Worker }).worker;
      const exited = once(old, 'exit');
      // the body is built by the caller with its own headers: the worker adds the token
      api.reply({ stall: true, status: 0 });
      const inFlight = thread.post(api.url, Buffer.from('{"n":1}'), {
        'content-type': 'application/json',
      });
      await api.waitForRequests(1);
      thread.reconfigure({ ...config, token: 'new-token' });
      const next = await thread.post(api.url, Buffer.from('{"n":2}'), {
        'content-type': 'application/json',
      });
      expect(next).to.include({ status: 204 });
      // the old worker still runs: its request is answered, not failed
      api.releaseStalled({ status: 204 });
      expect(await inFlight).to.include({ status: 204 });
      await exited;
      expect(api.requests.map(r => r.headers.authorization)).to.deep.equal([
        'Bearer old-token',
        'Bearer new-token',
      ]);
      expect(failures).to.deep.equal([]);
    } finally {
      await thread.close();
    }
  });
});
