// ApiClient posts streamed bodies: a fresh stream per attempt, exact Content-Length, local read errors.
import { expect } from 'chai';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config.js';
import { ApiClient } from '../../src/deliver/api-client.js';
import { payloadToString } from '../../src/deliver/payload-stream.js';
import { BridgeError, TemporaryError } from '../../src/errors/bridge-error.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { createLogger } from '../../src/observability/logger.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';

const CONTEXT = { idempotencyKey: 'k1', queueId: 'Q1', routeIndex: 0 };

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
});
