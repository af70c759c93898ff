// Auto-replies, bounces and list mail through the real daemon: each route's autoReplies and bulk
// policy (deliver | hold | drop) in queue and sync mode; `queue held` and replay of a held one.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { runCli } from '../helpers/run-cli.js';
import { makeMessage, openSession, sendRaw } from '../helpers/smtp-client.js';
import { spoolFiles } from '../helpers/wait-for.js';

const corpus = (file: string) =>
  readFileSync(new URL(`../fixtures/corpus/${file}`, import.meta.url));

/** iCloud's out-of-office reply to a customer's message (In-Reply-To it). */
const OUT_OF_OFFICE = corpus('auto-replies/sisimai-rfc3834-03.eml');
/** Postfix's DSN: a bounce. */
const BOUNCE = corpus('bounces-dsn/sisimai-lhost-postfix-01.eml');

const LIST_POST = makeMessage({
  From: 'announce@lists.example.org',
  To: 'support@example.com',
  Subject: 'Release 2.0',
  'List-Id': '<announce.lists.example.org>',
  'Message-ID': '<release-2@lists.example.org>',
});

describe("auto-replies, bounces and list mail: each route's policy", function () {
  // one command line process in two tests (about 0.8 s each, more under load)
  this.timeout(30_000);
  const t = useBridge();

  function start(
    routes: Array<Record<string, string>>,
    extra: Record<string, Record<string, string>> = {},
  ) {
    return t.start({
      api: apiAt(t.api.url),
      delivery: { scanIntervalMs: 50 },
      routes,
      ...extra,
    });
  }

  async function send(
    bridge: TestBridge,
    raw: Buffer | string,
    to: string[],
    from = 'sender@example.net',
  ) {
    const sent = await sendRaw({ port: bridge.smtpPort, from, to, raw });
    expect(sent.code, sent.response).to.equal(250);
    return sent;
  }

  /** The outcome line of the filer for a message. */
  function outcome(bridge: TestBridge, message: string) {
    return bridge.waitForLog(l => l.message === message);
  }

  async function metric(bridge: TestBridge, series: string): Promise<number> {
    const text = await bridge.daemon.metrics.registry.metrics();
    const line = text.split('\n').find(l => l.startsWith(`${series} `));
    return Number(line?.split(' ')[1] ?? 0);
  }

  it('default: an out-of-office reply is held (not posted, listed by queue held); replayed, it is posted', async () => {
    const bridge = await start([
      { match: 'support@example.com', mailbox_id: 'mb-support' },
    ]);
    await send(bridge, OUT_OF_OFFICE, ['support@example.com']);
    const held = await outcome(bridge, 'message held');
    expect(held.reason).to.equal(
      'auto-reply: X-Apple-Action: VACATION (autoReplies: hold)',
    );
    expect(t.api.requests).to.have.length(0);
    const env = { MAILBRIDGE_SPOOL_DIR: bridge.spoolDir };
    const listed = await runCli(['queue', 'held', '--json'], env);
    expect(listed.code, listed.stderr).to.equal(0);
    const rows = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(rows.map(r => [r.id, r.reason])).to.deep.equal([
      [held.queueId, held.reason],
    ]);
    // the operator reads it and decides it is a ticket after all
    const replay = await runCli(['queue', 'replay', String(held.queueId)], env);
    expect(replay.code, replay.stderr).to.equal(0);
    await outcome(bridge, 'message delivered');
    expect(t.api.requests).to.have.length(1);
    expect(t.api.requests[0]!.body).to.include({
      mailbox_id: 'mb-support',
      subject: 'Auto reply: Nyaan',
    });
  });

  it('autoReplies: drop: a bounce is not posted, logged "message dropped" and counted', async () => {
    const bridge = await start([{ match: '*', autoReplies: 'drop' }]);
    await send(bridge, BOUNCE, ['support@example.com'], '');
    const line = await outcome(bridge, 'message dropped');
    expect(line).to.include({ outcome: 'dropped', level: 'info' });
    expect(line.reason).to.equal(
      'route 0: bounce: Content-Type: multipart/report; report-type=delivery-status (autoReplies: drop)',
    );
    expect(t.api.requests).to.have.length(0);
    expect(await metric(bridge, 'mailbridge_dropped_total')).to.equal(1);
    expect(
      await metric(bridge, 'mailbridge_deliveries_total{outcome="dropped"}'),
    ).to.equal(1);
    for (const folder of ['queue', 'held', 'dead', 'msg']) {
      expect(await spoolFiles(bridge.spoolDir, folder)).to.deep.equal([]);
    }
  });

  it('bulk: hold: a message with List-Id is held', async () => {
    const bridge = await start([{ match: '*', bulk: 'hold' }]);
    await send(bridge, LIST_POST, ['support@example.com']);
    const held = await outcome(bridge, 'message held');
    expect(held.reason).to.equal('bulk: List-Id (bulk: hold)');
    expect(t.api.requests).to.have.length(0);
  });

  it('autoReplies: deliver posts it; beside a route that drops it, the delivered line names the dropped route', async () => {
    const bridge = await start([
      {
        match: 'support@example.com',
        mailbox_id: 'mb-support',
        autoReplies: 'deliver',
      },
      {
        match: 'sales@example.com',
        mailbox_id: 'mb-sales',
        autoReplies: 'drop',
      },
    ]);
    await send(bridge, OUT_OF_OFFICE, [
      'support@example.com',
      'sales@example.com',
    ]);
    const line = await outcome(bridge, 'message delivered');
    expect(line.dropped).to.equal(
      'route 1: auto-reply: X-Apple-Action: VACATION (autoReplies: drop)',
    );
    expect(t.api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-support',
    ]);
    expect(await metric(bridge, 'mailbridge_dropped_total')).to.equal(1);
  });

  it('hybrid mode: a message dropped on every route is answered 250 dropped, and counted once', async () => {
    const bridge = await start([{ match: '*', autoReplies: 'drop' }], {
      delivery: { mode: 'hybrid' },
    });
    const sent = await send(bridge, BOUNCE, ['support@example.com'], '');
    expect(sent.response).to.match(/dropped as \S+/);
    const line = await outcome(bridge, 'message dropped');
    expect(line.reason).to.match(/^route 0: bounce: /);
    expect(t.api.requests).to.have.length(0);
    expect(await metric(bridge, 'mailbridge_dropped_total')).to.equal(1);
  });

  it('api.workerThread false (the policy step on the main thread): held and dropped alike', async () => {
    const bridge = await t.start({
      api: apiAt(t.api.url, { workerThread: false }),
      routes: [
        { match: 'support@example.com', bulk: 'hold' },
        { match: 'sales@example.com', bulk: 'drop' },
      ],
    });
    await send(bridge, LIST_POST, ['support@example.com', 'sales@example.com']);
    const held = await outcome(bridge, 'message held');
    expect(held.reason).to.equal('bulk: List-Id (bulk: hold)');
    expect(held.dropped).to.equal('route 1: bulk: List-Id (bulk: drop)');
    expect(t.api.requests).to.have.length(0);
    expect(await metric(bridge, 'mailbridge_dropped_total')).to.equal(1);
  });

  it('sync mode: held in held/ before the 250; dropped with a 250, logged and counted', async () => {
    const bridge = await start(
      [
        { match: 'support@example.com', mailbox_id: 'mb-support' },
        { match: 'noreply@example.com', autoReplies: 'drop' },
      ],
      { delivery: { mode: 'sync' } },
    );
    const held = await send(bridge, OUT_OF_OFFICE, ['support@example.com']);
    expect(held.response).to.match(/held as \S+/);
    const dropped = await send(bridge, BOUNCE, ['noreply@example.com'], '');
    expect(dropped.response).to.match(/dropped as \S+/);
    const line = await outcome(bridge, 'message dropped');
    expect(line).to.include({ outcome: 'dropped', mode: 'sync', code: 250 });
    expect(line.reason).to.match(/^route 1: bounce: /);
    expect(t.api.requests).to.have.length(0);
    expect(await metric(bridge, 'mailbridge_dropped_total')).to.equal(1);
    expect(await spoolFiles(bridge.spoolDir, 'held')).to.have.length(1);
  });

  it('LMTP, sync mode: the recipient of a dropping route hears "dropped", the other its own failure', async () => {
    const bridge = await t.start({
      api: apiAt(t.api.url),
      delivery: { mode: 'sync' },
      smtp: { lmtp: true },
      routes: [
        { match: 'support@example.com', bulk: 'drop' },
        { match: 'billing@example.com', mailbox_id: 'mb-billing' },
      ],
    });
    t.api.respondWith(() => ({ status: 503 }));
    const session = await openSession(bridge.smtpPort);
    session.socket.write(
      'LHLO client.example.net\r\nMAIL FROM:<announce@lists.example.org>\r\n' +
        'RCPT TO:<support@example.com>\r\nRCPT TO:<billing@example.com>\r\nDATA\r\n',
    );
    await session.waitFor(/^354 /m);
    session.clear();
    session.socket.write(`${LIST_POST}.\r\n`);
    // one reply per RCPT after the dot: both, each a whole line
    await session.waitFor(/^250 [^\r\n]*\r\n/m);
    await session.waitFor(/^451 [^\r\n]*\r\n/m);
    const finals = session.replies().match(/^\d{3} .*$/gm) ?? [];
    session.socket.destroy();
    const [support, billing] = finals;
    expect(support).to.match(/^250 .*dropped as /);
    expect(billing).to.match(/^451 /);
  });
});

describe('preview names each route that would hold or drop the message', function () {
  this.timeout(30_000);

  it('one stderr line per such route, with the reason; stdout keeps one body per route', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-noise-preview-'));
    try {
      const config = join(dir, 'routes.yaml');
      await writeFile(
        config,
        [
          'routes:',
          '  - match: support@example.com',
          '    mailbox_id: mb-support',
          '  - match: sales@example.com',
          '    mailbox_id: mb-sales',
          '    autoReplies: drop',
          '  - match: ops@example.com',
          '    mailbox_id: mb-ops',
          '    autoReplies: deliver',
          '',
        ].join('\n'),
      );
      const file = fileURLToPath(
        new URL(
          '../fixtures/corpus/auto-replies/sisimai-rfc3834-01.eml',
          import.meta.url,
        ),
      );
      const rcpt = [
        'support@example.com',
        'sales@example.com',
        'ops@example.com',
      ];
      const result = await runCli([
        'preview',
        file,
        '--config',
        config,
        ...rcpt.flatMap(r => ['--rcpt', r]),
      ]);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stderr.split('\n').filter(Boolean)).to.deep.equal([
        'mailbridge: policy: route 0 (support@example.com) would be held: auto-reply: Auto-Submitted: auto-replied (autoReplies: hold)',
        'mailbridge: policy: route 1 (sales@example.com) would be dropped (nothing posted): auto-reply: Auto-Submitted: auto-replied (autoReplies: drop)',
      ]);
      const bodies = result.stdout
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l) as Record<string, unknown>);
      expect(bodies.map(b => b.mailbox_id)).to.deep.equal([
        'mb-support',
        'mb-sales',
        'mb-ops',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
