// ApiClient posts streamed bodies: a fresh stream per attempt, exact Content-Length, local read errors.
import { expect } from 'chai';
import { once } from 'node:events';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config.js';
import { ApiClient } from '../../src/api/api-client.js';
import { INLINE_BODY_BYTES, requestBody } from '../../src/api/http-exchange.js';
import {
  payloadToString,
  serializePayload,
} from '../../src/api/payload-stream.js';
import { BridgeError, TemporaryError } from '../../src/errors/bridge-error.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { createLogger } from '../../src/observability/logger.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';

const CONTEXT = { idempotencyKey: 'k1', queueId: 'Q1', routeIndex: 0 };

/** A body without attachment files whose JSON is exactly `length` bytes. */
function payloadOfLength(length: number): ApiPayload {
  const payload: ApiPayload = { ext_msg_id: '<m@example.com>', content: '' };
  const bare = Buffer.byteLength(JSON.stringify(payload));
  payload.content = 'x'.repeat(length - bare);
  return payload;
}

describe('ApiClient: streamed bodies', () => {
  let api: FakeApi;
  let client: ApiClient;
  let dir: string;
  let logs: Array<Record<string, unknown>>;

  beforeEach(async () => {
    api = await startFakeApi();
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-client-'));
    logs = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line.trim()) continue;
          logs.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    const config = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: { api: { url: api.url, token: 't', timeoutMs: 5000 } },
    });
    client = new ApiClient(
      config.api,
      createLogger({ level: 'debug', stream }),
    );
  });
  afterEach(async () => {
    await client.close();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function payloadWith(bytes: Buffer): Promise<ApiPayload> {
    const path = join(dir, 'att.bin');
    await writeFile(path, bytes);
    return {
      subject: 'Grüße',
      attachments: [{ name: 'a.bin', file: { path, size: bytes.length } }],
      ext_msg_id: '<m@example.com>',
    };
  }

  it('posts the same JSON on every attempt, each with an exact Content-Length', async () => {
    const bytes = Buffer.alloc(300_000, 0xab);
    const payload = await payloadWith(bytes);
    api.reply({ status: 503 }, { status: 204 });
    let first: unknown;
    await client.send(payload, CONTEXT).catch((err: unknown) => (first = err));
    expect(first).to.be.instanceOf(TemporaryError);
    await client.send(payload, CONTEXT);

    const expected = await payloadToString(payload);
    expect(api.requests).to.have.length(2);
    for (const request of api.requests) {
      expect(request.body).to.deep.equal(JSON.parse(expected));
      expect(request.headers['content-length']).to.equal(
        String(Buffer.byteLength(expected)),
      );
      expect(request.headers['content-type']).to.equal('application/json');
      expect(request.headers['idempotency-key']).to.equal('k1');
    }
  });

  describe('small bodies without files are posted as one Buffer, the rest streamed', () => {
    const rows = [
      { title: '2 KiB', length: 2048, inline: true },
      {
        title: 'exactly INLINE_BODY_BYTES',
        length: INLINE_BODY_BYTES,
        inline: true,
      },
      {
        title: 'INLINE_BODY_BYTES + 1',
        length: INLINE_BODY_BYTES + 1,
        inline: false,
      },
    ];
    for (const row of rows) {
      it(`${row.title}: ${row.inline ? 'a Buffer' : 'a stream'}, the same bytes and headers on the wire`, async () => {
        const payload = payloadOfLength(row.length);
        const body = requestBody(serializePayload(payload));
        expect(Buffer.isBuffer(body)).to.equal(row.inline);
        expect(body instanceof Readable).to.equal(!row.inline);
        if (body instanceof Readable) body.destroy();

        await client.send(payload, CONTEXT);
        const [request] = api.requests;
        expect(request?.body).to.deep.equal(payload);
        expect(request?.headers['content-length']).to.equal(String(row.length));
        expect(request?.headers['transfer-encoding']).to.equal(undefined);
        expect(request?.headers).to.include({
          authorization: 'Bearer t',
          'content-type': 'application/json',
          accept: 'application/json',
          'user-agent': 'mailbridge',
          'idempotency-key': 'k1',
        });
      });
    }

    it('a small body with an attachment file is streamed', async () => {
      const payload = await payloadWith(Buffer.from('tiny'));
      const body = requestBody(serializePayload(payload));
      expect(body).to.be.instanceOf(Readable);
      (body as Readable).destroy();
    });
  });

  for (const workerThread of [false, true]) {
    it(`a 2xx answer that never ends is drained only until api.timeoutMs (api.workerThread ${workerThread})`, async () => {
      // answers 200 at once, then a byte every 20 ms: the socket is never idle
      const server = createServer((req, res) => {
        req.resume();
        req.once('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          const timer = setInterval(() => res.write(' '), 20);
          res.once('close', () => clearInterval(timer));
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const config = loadConfig({
        env: { NODE_ENV: 'test' },
        overrides: {
          api: {
            url: `http://127.0.0.1:${port}/m`,
            token: 't',
            timeoutMs: 300,
            workerThread,
          },
        },
      });
      const trickled = new ApiClient(
        config.api,
        createLogger({
          level: 'error',
          stream: new Writable({ write: (_c, _e, done) => done() }),
        }),
      );
      // the post thread started: its start-up is not part of what is timed
      await trickled.ready();
      try {
        const closed = new Promise<void>(resolve =>
          server.once('request', (_req, res) => res.once('close', resolve)),
        );
        const started = performance.now();
        // accepted at once: the slot is not held while the answer drains
        await trickled.send(payloadOfLength(100), CONTEXT);
        expect(performance.now() - started).to.be.below(300);
        await closed;
        const elapsed = performance.now() - started;
        expect(elapsed).to.be.at.least(290);
        expect(elapsed).to.be.below(3000);
      } finally {
        await trickled.close();
        server.closeAllConnections();
        server.close();
      }
    });
  }

  describe('an attachment file that cannot be read is a local, temporary error', () => {
    const rows = [
      {
        title: 'the file is gone',
        spoil: (path: string) => rm(path),
        error: /^local error: ENOENT/,
      },
      {
        title: 'the file shrank',
        spoil: (path: string) => truncate(path, 10),
        error:
          /^local error: attachment file .* holds 10 bytes, expected 300000$/,
      },
    ];
    for (const row of rows) {
      it(row.title, async () => {
        const payload = await payloadWith(Buffer.alloc(300_000, 1));
        await row.spoil(payload.attachments![0]!.file.path);
        let error: unknown;
        await client
          .send(payload, CONTEXT)
          .catch((err: unknown) => (error = err));
        expect(error).to.be.instanceOf(TemporaryError);
        expect((error as BridgeError).message).to.match(row.error);
        expect((error as BridgeError).api).to.equal(undefined);
        // the API never got a whole body
        expect(api.requests).to.deep.equal([]);
        expect(logs.map(l => l.message)).to.include(
          'attachment could not be read',
        );
      });
    }
  });

  // Regression: axios set a 60 s keep-alive delay on every request's socket and the agent reset
  // it to 1 s each time it took the socket back: five setsockopt calls per POST.
  it("a kept connection's TCP keep-alive is set once, not again on every POST", async () => {
    // the main thread's agent (the post thread's has the same options)
    await client.close();
    client = new ApiClient(
      { ...client['config'], workerThread: false },
      createLogger({ level: 'error' }),
    );
    const agent = client['httpAgent'];
    // a POST, and the agent taking its socket back (where it sets keep-alive)
    const post = () =>
      Promise.all([
        client.send(payloadOfLength(100), CONTEXT),
        once(agent, 'free'),
      ]);
    await post();
    const free = Object.values(agent.freeSockets).flat();
    expect(free).to.have.length(1);
    const handle = (
      free[0] as unknown as {
        _handle: { setKeepAlive(enable: boolean, delay: number): number };
      }
    )._handle;
    const calls: unknown[][] = [];
    const original = handle.setKeepAlive.bind(handle);
    handle.setKeepAlive = (enable, delay) => {
      calls.push([enable, delay]);
      return original(enable, delay);
    };
    for (let i = 0; i < 3; i++) await post();
    expect(api.requests).to.have.length(4);
    expect(Object.values(agent.freeSockets).flat()).to.deep.equal(free);
    expect(calls).to.deep.equal([]);
  });
});
