// How the API's answers become SMTP replies and log lines (sync mode), and what the POST carries.
import { expect } from 'chai';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeReply } from '../helpers/fake-api.js';
import {
  makeMessage,
  sendRaw,
  type SendResult,
} from '../helpers/smtp-client.js';

const TOKEN = 'tok-Secret-4f1c9a77e2';
const MARKER = 'body-marker-7d3e0b51c8a9';

const MESSAGE = makeMessage(
  {
    From: 'jane@example.net',
    To: 'support@example.com',
    Subject: 'api failures',
    'Message-ID': '<api-failures@example.net>',
  },
  `Please help, ${MARKER}.\r\n`,
);

describe('API answers and failures (sync mode)', () => {
  const t = useBridge();

  async function start(
    apiOverrides: Record<string, unknown> = {},
    extra: Record<string, unknown> = {},
  ): Promise<TestBridge> {
    return t.start({
      // the SMTP reply reflects the API's answer only in sync mode
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url, { token: TOKEN, ...apiOverrides }),
      ...extra,
    });
  }

  function send(raw: string = MESSAGE, to = ['support@example.com']) {
    return sendRaw({ port: t.bridge.smtpPort, to, raw });
  }

  /** Log lines at info, warn or error. */
  function loudLogs(): Array<Record<string, unknown>> {
    return t.bridge.logs.filter(l => l.level !== 'debug');
  }

  /** The first line above debug that matches, waiting for it if it is not written yet. */
  function loudLine(
    match: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> {
    return t.bridge.waitForLog(l => l.level !== 'debug' && match(l));
  }

  /** The SMTP reply must not leak the API's address, token or answer. */
  function expectNoLeak(result: SendResult): void {
    expect(result.response).not.to.include(t.api.url);
    expect(result.response).not.to.include(new URL(t.api.url).host);
    expect(result.response).not.to.include(TOKEN);
  }

  async function replyFor(reply: FakeReply): Promise<SendResult> {
    await start();
    t.api.reply(reply);
    const result = await send();
    expect(t.api.requests).to.have.length(1);
    expectNoLeak(result);
    return result;
  }

  it('204 -> 250', async () => {
    const result = await replyFor({ status: 204 });
    expect(result.code).to.equal(250);
    expect(result.response).to.match(/^250 /);
  });

  it('200 with a JSON body -> 250', async () => {
    const result = await replyFor({ status: 200, body: { id: 42 } });
    expect(result.code).to.equal(250);
  });

  // regression: any answer over 1 MiB failed axios's maxContentLength and was taken for a
  // network error, so an accepted message was retried (and posted again) until it expired
  it('200 with a 3 MiB body -> 250: a success body is drained unread', async () => {
    const result = await replyFor({
      status: 200,
      body: 'x'.repeat(3 * 1024 * 1024),
    });
    expect(result.code).to.equal(250);
  });

  it('400 with a 3 MiB body -> 554: the refusal stays a refusal', async () => {
    const result = await replyFor({
      status: 400,
      body: 'y'.repeat(3 * 1024 * 1024),
    });
    expect(result.response).to.match(/^554 5\.6\.0 /);
  });

  it('400 with {errors:[...]} -> 554 5.6.0, the errors logged', async () => {
    const result = await replyFor({
      status: 400,
      body: {
        errors: [{ code: 'invalid_mailbox', message: 'mailbox_id unknown' }],
      },
    });
    expect(result.response).to.match(/^554 5\.6\.0 /);
    const line = await loudLine(l => Array.isArray(l.apiErrors));
    expect(line.status).to.equal(400);
    expect(line.apiErrors).to.deep.equal([
      {
        code: 'invalid_mailbox',
        message: 'mailbox_id unknown',
        deprecated: false,
        will_be_deprecated: false,
      },
    ]);
  });

  for (const status of [401, 403, 404]) {
    it(`${status} -> 451 4.3.0 and an error log naming a configuration problem`, async () => {
      const result = await replyFor({ status });
      expect(result.response).to.match(/^451 4\.3\.0 /);
      const line = await loudLine(l => l.level === 'error');
      expect(line).to.include({
        message: 'api rejected our configuration',
        status,
      });
      expect(String(line.reason)).to.include('check api.url and api.token');
    });
  }

  for (const status of [429, 500, 503]) {
    it(`${status} -> 451 4.3.0`, async () => {
      const result = await replyFor({
        status,
        headers: status === 429 ? { 'retry-after': '30' } : {},
      });
      expect(result.response).to.match(/^451 4\.3\.0 /);
      const line = await loudLine(l => l.message === 'api post failed');
      expect(line.level).to.equal('warn');
      expect(line.status).to.equal(status);
    });
  }

  it('a redirect is not followed: 451 4.3.0 and a configuration error', async () => {
    const result = await replyFor({
      status: 302,
      headers: { location: t.api.url },
    });
    expect(result.response).to.match(/^451 4\.3\.0 /);
    const line = await loudLine(l => l.level === 'error');
    expect(line.message).to.equal('api rejected our configuration');
    expect(String(line.reason)).to.include('redirect');
  });

  it('a stalled API past api.timeoutMs -> 451 4.3.0', async () => {
    await start({ timeoutMs: 300 });
    t.api.reply({ stall: true, status: 0 });
    const result = await send();
    expect(result.response).to.match(/^451 4\.3\.0 /);
    expectNoLeak(result);
    expect(t.api.requests).to.have.length(1);
    const line = await loudLine(l => l.message === 'api post failed');
    expect(line.reason).to.equal('timeout');
  });

  it('an error answer that trickles on past api.timeoutMs -> 451 4.3.0, the slot freed', async () => {
    // 500 at once, then a byte every 20 ms for ever: the socket is never idle, so only the
    // time limit of the whole POST can end it
    const trickle = createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        const timer = setInterval(() => res.write(' '), 20);
        res.once('close', () => clearInterval(timer));
      });
    });
    trickle.listen(0, '127.0.0.1');
    await once(trickle, 'listening');
    const { port } = trickle.address() as AddressInfo;
    try {
      await t.start({
        delivery: { mode: 'sync' },
        api: apiAt(`http://127.0.0.1:${port}/m`, {
          token: TOKEN,
          timeoutMs: 300,
          concurrency: 1,
        }),
      });
      const started = performance.now();
      const results = [await send(), await send()];
      expect(results.map(r => r.response)).to.satisfy((replies: string[]) =>
        replies.every(reply => /^451 4\.3\.0 /.test(reply)),
      );
      // each POST was cut at its limit, and the one slot was free for the second
      expect(performance.now() - started).to.be.below(5000);
      const line = await loudLine(l => l.message === 'api post failed');
      expect(line.status).to.equal(500);
    } finally {
      trickle.closeAllConnections();
      trickle.close();
    }
  });

  it('a closed API port (connection refused) -> 451 4.3.0', async () => {
    const closed = await startFakeApi();
    const url = closed.url;
    await closed.close();
    await t.start({
      delivery: { mode: 'sync' },
      api: apiAt(url, { token: TOKEN }),
    });
    const result = await send();
    expect(result.response).to.match(/^451 4\.3\.0 /);
    expect(result.response).not.to.include(url);
    expect(result.response).not.to.include(TOKEN);
    const line = await loudLine(l => l.message === 'api post failed');
    expect(line.reason).to.equal('network error ECONNREFUSED');
  });

  it('sends the bearer token, JSON content type, and a stable Idempotency-Key per message and route', async () => {
    await start(
      {},
      {
        // no dedupe records: the same message is posted again, to compare its keys
        delivery: { mode: 'sync', dedupeWindowMs: 0 },
        routes: [
          { match: 'support@example.com', mailbox_id: 'mb-support' },
          { match: 'billing@example.com', mailbox_id: 'mb-billing' },
        ],
      },
    );
    expect((await send()).code).to.equal(250);
    expect((await send()).code).to.equal(250);
    expect(
      (await send(MESSAGE, ['support@example.com', 'billing@example.com']))
        .code,
    ).to.equal(250);
    const requests = t.api.requests;
    expect(requests).to.have.length(4);
    for (const request of requests) {
      expect(request.method).to.equal('POST');
      expect(request.url).to.equal(new URL(t.api.url).pathname);
      expect(request.headers.authorization).to.equal(`Bearer ${TOKEN}`);
      expect(request.headers['content-type']).to.match(/^application\/json\b/);
      expect(request.headers['idempotency-key']).to.match(/^\S+$/);
    }
    const keys = requests.map(r => r.headers['idempotency-key']);
    const [first, second, ...perRoute] = requests;
    expect(second?.headers['idempotency-key']).to.equal(keys[0]);
    // the support route's key is the same as before; the billing route's is its own
    const support = perRoute.find(r => r.body.mailbox_id === 'mb-support');
    const billing = perRoute.find(r => r.body.mailbox_id === 'mb-billing');
    expect(first?.body.mailbox_id).to.equal('mb-support');
    expect(support?.headers['idempotency-key']).to.equal(keys[0]);
    expect(billing?.headers['idempotency-key']).not.to.equal(keys[0]);
  });

  it('a deprecated error code in the body logs a warning', async () => {
    await replyFor({
      status: 422,
      body: {
        errors: [
          {
            code: 'old_field',
            message: 'field renamed',
            deprecated: true,
            will_be_deprecated: false,
          },
        ],
      },
    });
    const warning = await loudLine(
      l => l.level === 'warn' && l.apiCode === 'old_field',
    );
    expect(String(warning.message)).to.match(/deprecated/);
  });

  it('logs above debug never carry the token or the message body', async () => {
    // no dedupe records: the same message is sent four times and posted each time
    await start({}, { delivery: { mode: 'sync', dedupeWindowMs: 0 } });
    t.api.reply(
      { status: 204 },
      { status: 400, body: { errors: [{ code: 'bad', message: 'no' }] } },
      { status: 401 },
      { status: 503 },
    );
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await send()).code);
    expect(codes).to.deep.equal([250, 554, 451, 451]);
    // the body did reach the API, so the marker was in the daemon's hands
    expect(String(t.api.requests[0]?.body.content)).to.include(MARKER);
    // every transaction has logged its outcome before the lines are searched
    await loudLine(
      () => loudLogs().filter(l => l.stage === 'smtp' && l.code).length >= 4,
    );
    const loud = loudLogs();
    for (const line of loud) {
      const text = JSON.stringify(line);
      expect(text, text).not.to.include(TOKEN);
      expect(text, text).not.to.include(MARKER);
    }
  });

  it('keeps at most api.concurrency POSTs in flight', async () => {
    await start({ concurrency: 1 });
    // the first answer is slow; an unlimited client would send the second POST meanwhile
    t.api.reply({ status: 204, delayMs: 300 });
    const results = await Promise.all([
      // two messages (two Message-IDs): neither is a duplicate of the other
      send(MESSAGE.replace('api-failures@', 'first@')),
      send(MESSAGE.replace('api-failures@', 'second@')),
    ]);
    expect(results.map(r => r.code)).to.deep.equal([250, 250]);
    expect(t.api.requests).to.have.length(2);
    expect(t.api.maxInFlight).to.equal(1);
  });
});
