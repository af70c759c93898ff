// Nothing lost to size: a body over api.maxBodyBytes, or one the API answers 413, is posted
// with its largest attachments left out and named in the content, and the raw message is kept
// in held/ (queue held); never dead for its size alone.
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { attachmentPart, multipartMessage, textPart } from '../helpers/mime.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { runCli } from '../helpers/run-cli.js';
import { sendRaw } from '../helpers/smtp-client.js';

/** A message with a 60 KB and a 2 KB attachment. */
const RAW = multipartMessage(
  {
    From: 'jane@example.net',
    To: 'support@example.com',
    Subject: 'Scans',
    'Message-ID': '<scans-1@example.net>',
  },
  [
    textPart('Both scans attached.'),
    attachmentPart('scan-large.pdf', Buffer.alloc(60_000, 7)),
    attachmentPart('scan-small.pdf', Buffer.alloc(2_000, 9)),
  ],
);

const ROUTES = [{ match: 'support@example.com', mailbox_id: 'mb-support' }];

for (const workerThread of [true, false]) {
  describe(`body size (api.workerThread ${workerThread})`, function () {
    // each test also runs the queue command as a process of its own
    this.timeout(30_000);
    const t = useBridge();

    async function send(bridge: TestBridge): Promise<Record<string, unknown>> {
      const sent = await sendRaw({
        port: bridge.smtpPort,
        to: ['support@example.com'],
        raw: RAW,
      });
      expect(sent.code, sent.response).to.equal(250);
      const id = queueIdOf(sent.response);
      return bridge.waitForLog(
        l => l.queueId === id && typeof l.attempts === 'number',
      );
    }

    async function held(bridge: TestBridge) {
      const listed = await runCli(['queue', 'held', '--json'], {
        MAILBRIDGE_SPOOL_DIR: bridge.spoolDir,
      });
      expect(listed.code, listed.stderr).to.equal(0);
      return JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    }

    it('over api.maxBodyBytes: posted without the largest attachment, named in content; the raw message held', async () => {
      const bridge = await t.start({
        api: apiAt(t.api.url, { workerThread, maxBodyBytes: 40_000 }),
        routes: ROUTES,
      });
      const line = await send(bridge);
      expect(t.api.requests).to.have.length(1);
      const body = t.api.requests[0]!.body as {
        content: string;
        attachments: Array<{ name: string }>;
      };
      expect(body.attachments.map(a => a.name)).to.deep.equal([
        'scan-small.pdf',
      ]);
      expect(body.content).to.contain('Both scans attached.');
      expect(body.content).to.contain('scan-large.pdf (59 KiB)');
      expect(line.outcome).to.equal('held');
      const [kept] = await held(bridge);
      expect(kept!.id).to.equal(line.queueId);
      expect(kept!.reason).to.match(
        /body too large for the API, posted without: scan-large\.pdf/,
      );
    });

    it('a 413 from the API: posted again without the largest attachment, never dead', async () => {
      t.api.respondWith(request =>
        JSON.stringify(request.body).length > 40_000
          ? { status: 413 }
          : undefined,
      );
      const bridge = await t.start({
        api: apiAt(t.api.url, { workerThread }),
        routes: ROUTES,
      });
      const line = await send(bridge);
      expect(t.api.requests).to.have.length(2);
      const names = t.api.requests.map(r =>
        (r.body.attachments as Array<{ name: string }>).map(a => a.name),
      );
      expect(names).to.deep.equal([
        ['scan-large.pdf', 'scan-small.pdf'],
        ['scan-small.pdf'],
      ]);
      // the same post, smaller: the same idempotency key
      expect(t.api.requests[1]!.headers['idempotency-key']).to.equal(
        t.api.requests[0]!.headers['idempotency-key'],
      );
      expect(line.outcome).to.equal('held');
      expect((await held(bridge)).map(h => h.id)).to.deep.equal([line.queueId]);
    });
  });
}

describe('body size in sync mode', function () {
  this.timeout(30_000);
  const t = useBridge();

  it('the trimmed message is delivered (250) and its raw message kept in held/', async () => {
    const bridge = await t.start({
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url, { maxBodyBytes: 40_000 }),
      routes: ROUTES,
    });
    const sent = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw: RAW,
    });
    expect(sent.code, sent.response).to.equal(250);
    expect(sent.response).to.match(/delivered as/);
    expect(t.api.requests).to.have.length(1);
    const listed = await runCli(['queue', 'held', '--json'], {
      MAILBRIDGE_SPOOL_DIR: bridge.spoolDir,
    });
    const [kept] = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(kept!.reason).to.match(/posted without: scan-large\.pdf/);
  });
});
