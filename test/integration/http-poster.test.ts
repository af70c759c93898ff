// HttpPoster sends what axios's instance.post() sends, with its config built once.
import { expect } from 'chai';
import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { AxiosResponse } from 'axios';
import { createHttp, HttpPoster } from '../../src/api/http-poster.js';
import {
  startFakeApi,
  type FakeApi,
  type RecordedRequest,
} from '../helpers/fake-api.js';

const TLS = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

const BODY = Buffer.from(JSON.stringify({ content: 'hello' }));

function headersFor(key: string): Record<string, string> {
  return { 'Idempotency-Key': key, 'Content-Length': String(BODY.length) };
}

/** Reads an answer's stream to its end. */
async function text(response: AxiosResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.data as Readable) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

describe('HttpPoster', () => {
  let api: FakeApi;
  let agent: http.Agent;
  let tlsAgent: https.Agent;

  /** The client's axios instance, on this test's agents. */
  function instance(token = 't'): ReturnType<typeof createHttp> {
    return createHttp({ token }, agent, tlsAgent);
  }

  /** The request the stand-in recorded `index`th. */
  function recorded(index: number): RecordedRequest {
    const request = api.requests[index];
    if (!request) throw new Error(`no request ${index} recorded`);
    return request;
  }

  beforeEach(async () => {
    api = await startFakeApi();
    agent = new http.Agent({ keepAlive: true });
    tlsAgent = new https.Agent({ keepAlive: true });
  });

  afterEach(async () => {
    agent.destroy();
    tlsAgent.destroy();
    await api.close();
  });

  it('sends the same request line, headers and body as instance.post(), first POST and later ones', async () => {
    const axiosInstance = instance('secret');
    await axiosInstance.post(api.url, BODY, { headers: headersFor('k0') });
    const poster = new HttpPoster(axiosInstance);
    const signal = new AbortController().signal;
    await poster.post(api.url, BODY, headersFor('k1'), signal);
    await poster.post(api.url, BODY, headersFor('k2'), signal);

    expect(api.requests).to.have.length(3);
    const viaAxios = recorded(0);
    const [first, second] = [recorded(1), recorded(2)];
    for (const [request, key] of [
      [first, 'k1'],
      [second, 'k2'],
    ] as const) {
      expect(request.method).to.equal('POST');
      expect(request.url).to.equal(viaAxios.url);
      expect(request.body).to.deep.equal({ content: 'hello' });
      expect(request.headers).to.deep.equal({
        ...viaAxios.headers,
        'idempotency-key': key,
      });
    }
    expect(viaAxios.headers).to.include({
      authorization: 'Bearer secret',
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': 'mailbridge',
      'content-length': String(BODY.length),
    });
  });

  it("keeps one POST's headers out of the next", async () => {
    const poster = new HttpPoster(instance());
    const signal = new AbortController().signal;
    await poster.post(
      api.url,
      BODY,
      { ...headersFor('k1'), 'X-Only-First': '1' },
      signal,
    );
    await poster.post(api.url, BODY, headersFor('k2'), signal);
    expect(recorded(0).headers).to.include({ 'x-only-first': '1' });
    expect(recorded(1).headers).not.to.have.property('x-only-first');
    expect(recorded(1).headers['idempotency-key']).to.equal('k2');
  });

  it("keeps each POST's URL and body its own: two stand-ins in turn, one poster", async () => {
    const other = await startFakeApi();
    try {
      const poster = new HttpPoster(instance());
      const signal = new AbortController().signal;
      const bodies = [0, 1, 2, 3].map(n =>
        Buffer.from(JSON.stringify({ content: `m${n}` })),
      );
      for (const [n, body] of bodies.entries()) {
        await poster.post(
          n % 2 ? other.url : api.url,
          body,
          { 'Idempotency-Key': `k${n}`, 'Content-Length': String(body.length) },
          signal,
        );
      }
      expect(api.requests.map(r => r.body.content)).to.deep.equal(['m0', 'm2']);
      expect(other.requests.map(r => r.body.content)).to.deep.equal([
        'm1',
        'm3',
      ]);
    } finally {
      await other.close();
    }
  });

  it('sends POSTs started together before its config is built, each once', async () => {
    const poster = new HttpPoster(instance());
    const signal = new AbortController().signal;
    const keys = ['a', 'b', 'c', 'd'];
    const answers = await Promise.all(
      keys.map(key => poster.post(api.url, BODY, headersFor(key), signal)),
    );
    expect(answers.map(a => a.status)).to.deep.equal([204, 204, 204, 204]);
    expect(
      api.requests.map(r => r.headers['idempotency-key']).sort(),
    ).to.deep.equal(keys);
  });

  it('posts a stream body and hands back any status with the answer as a stream', async () => {
    api.reply({
      status: 429,
      body: { errors: [{ code: 'slow' }] },
      headers: { 'Retry-After': '7' },
    });
    const poster = new HttpPoster(instance());
    const response = await poster.post(
      api.url,
      Readable.from([BODY.subarray(0, 5), BODY.subarray(5)]),
      headersFor('s'),
      new AbortController().signal,
    );
    expect(response.status).to.equal(429);
    expect(
      (response.headers as Record<string, unknown>)['retry-after'],
    ).to.equal('7');
    expect(JSON.parse(await text(response))).to.deep.equal({
      errors: [{ code: 'slow' }],
    });
    expect(recorded(0).body).to.deep.equal({ content: 'hello' });
  });

  it("rejects with Node's code when nothing listens, and with ERR_CANCELED when aborted", async () => {
    const poster = new HttpPoster(instance());
    const url = api.url;
    await api.close();
    const refused = await poster
      .post(url, BODY, headersFor('r'), new AbortController().signal)
      .then(
        () => null,
        (err: { code?: string }) => err.code,
      );
    expect(refused).to.equal('ECONNREFUSED');

    api = await startFakeApi();
    api.reply({ status: 204, stall: true });
    const controller = new AbortController();
    const pending = poster.post(
      api.url,
      BODY,
      headersFor('a'),
      controller.signal,
    );
    await api.waitForRequests(1);
    controller.abort();
    const aborted = await pending.then(
      () => null,
      (err: { code?: string }) => err.code,
    );
    expect(aborted).to.equal('ERR_CANCELED');
  });

  it('posts over HTTPS through the https agent, verifying the certificate', async () => {
    const cert = readFileSync(join(TLS, 'localhost.crt'));
    const seen: Array<{ url?: string; auth?: string; body: string }> = [];
    const server = https.createServer(
      { key: readFileSync(join(TLS, 'localhost.key')), cert },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          seen.push({
            url: req.url,
            auth: req.headers.authorization,
            body: Buffer.concat(chunks).toString('utf8'),
          });
          res.writeHead(201).end();
        });
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const trusting = new https.Agent({ keepAlive: true, ca: cert });
    const untrusting = new https.Agent({ keepAlive: true });
    try {
      const url = `https://localhost:${port}/api/v1/message`;
      const signal = new AbortController().signal;
      const poster = new HttpPoster(
        createHttp({ token: 's' }, agent, trusting),
      );
      for (const key of ['t1', 't2']) {
        const answer = await poster.post(url, BODY, headersFor(key), signal);
        expect(answer.status).to.equal(201);
      }
      expect(seen).to.deep.equal([
        { url: '/api/v1/message', auth: 'Bearer s', body: BODY.toString() },
        { url: '/api/v1/message', auth: 'Bearer s', body: BODY.toString() },
      ]);
      const refused = await new HttpPoster(
        createHttp({ token: 's' }, agent, untrusting),
      )
        .post(url, BODY, headersFor('t3'), signal)
        .then(
          () => null,
          (err: { code?: string }) => err.code,
        );
      expect(refused).to.equal('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(seen).to.have.length(2);
    } finally {
      trusting.destroy();
      untrusting.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});
