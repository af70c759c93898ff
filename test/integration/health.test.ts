// The health and metrics listener of the running daemon: /healthz, /readyz, /status, /metrics.
import { expect } from 'chai';
import { mkdir, rm } from 'node:fs/promises';
import { apiAt, useBridge } from '../helpers/bridge.js';
import {
  makeMessage,
  openDataSession,
  sendRaw,
} from '../helpers/smtp-client.js';

describe('health and metrics HTTP', () => {
  const t = useBridge();
  let base: string;

  beforeEach(async () => {
    const bridge = await t.start({
      // sync: a message is posted (or deferred) before its SMTP reply
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url),
    });
    const port = bridge.daemon.httpPort;
    expect(port).to.be.a('number').and.not.equal(0);
    base = `http://127.0.0.1:${port}`;
  });

  it('GET /healthz answers 200', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.equal('ok\n');
  });

  it('GET /readyz answers 200 while the daemon accepts mail', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.equal('ready\n');
  });

  it('GET /readyz answers 503 while the spool cannot store', async () => {
    const { tmpDir } = t.bridge.daemon.spool;
    // its volume gone (as root, a read-only mode would not stop us: a missing folder does)
    await rm(tmpDir, { recursive: true });
    const res = await fetch(`${base}/readyz`);
    expect(res.status).to.equal(503);
    expect(await res.text()).to.equal(
      'not ready: spool cannot store: ENOENT\n',
    );
    const status = (await (await fetch(`${base}/status`)).json()) as object;
    expect(status).to.include({
      ready: false,
      notReady: 'spool cannot store: ENOENT',
    });
    await mkdir(tmpDir);
    expect((await fetch(`${base}/readyz`)).status).to.equal(200);
  });

  it('GET /status tells whether delivery runs, as JSON', async () => {
    const res = await fetch(`${base}/status`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/json');
    // sync mode: no spool counts (nothing waits in it)
    expect(await res.json()).to.deep.equal({
      ready: true,
      delivery: { mode: 'sync', paused: false, reason: null },
    });
  });

  it('GET /metrics counts messages and posts', async () => {
    const result = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'count me' }),
    });
    expect(result.code).to.equal(250);
    t.api.reply({ status: 503 });
    const deferred = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'defer me' }),
    });
    expect(deferred.code).to.equal(451);

    const res = await fetch(`${base}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    const text = await res.text();
    expect(text).to.match(/^# TYPE mailbridge_messages_total counter$/m);
    expect(text).to.match(
      /^mailbridge_messages_total\{outcome="accepted"\} 1$/m,
    );
    expect(text).to.match(
      /^mailbridge_messages_total\{outcome="deferred"\} 1$/m,
    );
    expect(text).to.match(
      /^mailbridge_api_posts_total\{result="delivered"\} 1$/m,
    );
    expect(text).to.match(
      /^mailbridge_api_posts_total\{result="temporary"\} 1$/m,
    );
    expect(text).to.match(/^mailbridge_accept_seconds_count 2$/m);
  });

  it('accept latency runs from the end of DATA: a client slow to send its body is not counted', async () => {
    const PAUSE_MS = 600;
    const { socket, waitFor } = await openDataSession(t.bridge.smtpPort);
    socket.write('Subject: slow\r\n\r\nfirst half\r\n');
    // the client dawdles mid-body: that is its time, not ours
    await new Promise(resolve => setTimeout(resolve, PAUSE_MS));
    socket.write('second half\r\n.\r\n');
    await waitFor(/^250 /m);
    socket.end();

    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).to.match(/^mailbridge_accept_seconds_count 1$/m);
    const sum = Number(
      /^mailbridge_accept_seconds_sum (\S+)$/m.exec(text)?.[1],
    );
    expect(sum).to.be.greaterThan(0);
    expect(sum).to.be.lessThan(PAUSE_MS / 1000);
  });

  it('answers 404 to an unknown path', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).to.equal(404);
  });
});
