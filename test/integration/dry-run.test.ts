// Dry-run (no api.token): mail is accepted, each body is written under <spool>/dry-run/ and logged.
import { expect } from 'chai';
import { once } from 'node:events';
import { watch } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors/bridge-error.js';
import {
  apiAt,
  startBridge,
  useBridge,
  type TestBridge,
} from '../helpers/bridge.js';
import {
  makeMessage,
  openDataSession,
  sendRaw,
  smtpDialog,
} from '../helpers/smtp-client.js';

const ROUTES = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: '*@example.org', mailbox_id: 'mb-sales' },
];

/** A message with one 3000-byte attachment, so its base64 is long enough to notice. */
function messageWithAttachment(bytes: Buffer): string {
  return makeMessage(
    {
      From: 'jane@example.net',
      To: 'support@example.com, a@example.org',
      Subject: 'dry run',
      'Message-ID': '<dry-run@example.net>',
      'MIME-Version': '1.0',
      'Content-Type': 'multipart/mixed; boundary="b"',
    },
    [
      '--b',
      'Content-Type: text/plain',
      '',
      'Body text.',
      '--b',
      'Content-Type: application/octet-stream; name="blob.bin"',
      'Content-Disposition: attachment; filename="blob.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n'),
      '--b--',
      '',
    ].join('\r\n'),
  );
}

describe('dry-run (no api.token)', () => {
  let bridge: TestBridge;

  beforeEach(async () => {
    bridge = await startBridge({
      // sync: the dry-run files are written before the SMTP reply
      delivery: { mode: 'sync' },
      routes: ROUTES,
      smtp: { maxMessageSize: 20000 },
    });
  });
  afterEach(async () => {
    await bridge.close();
  });

  it('answers 250 and writes one JSON body per route under <spoolDir>/dry-run/', async () => {
    expect(bridge.daemon.dryRun).to.equal(true);
    const bytes = Buffer.alloc(3000, 7);
    const result = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com', 'a@example.org'],
      raw: messageWithAttachment(bytes),
    });
    expect(result.code, result.response).to.equal(250);

    const dir = join(bridge.spoolDir, 'dry-run');
    const files = (await readdir(dir)).sort();
    expect(files).to.have.length(2);
    for (const file of files) expect(file).to.match(/^[A-Z0-9]+-[01]\.json$/);
    const bodies = await Promise.all(
      files.map(
        async f =>
          JSON.parse(await readFile(join(dir, f), 'utf8')) as Record<
            string,
            unknown
          >,
      ),
    );
    const attachment = { name: 'blob.bin', file: bytes.toString('base64') };
    expect(bodies).to.deep.equal([
      {
        from: 'jane@example.net',
        to: 'support@example.com, a@example.org',
        subject: 'dry run',
        content: '<div>Body text.</div>',
        attachments: [attachment],
        ext_msg_id: '<dry-run@example.net>',
        mailbox_id: 'mb-support',
      },
      {
        from: 'jane@example.net',
        to: 'support@example.com, a@example.org',
        subject: 'dry run',
        content: '<div>Body text.</div>',
        attachments: [attachment],
        ext_msg_id: '<dry-run@example.net>',
        mailbox_id: 'mb-sales',
      },
    ]);

    // the log line carries the payload with the attachment shortened
    const isPayload = (l: Record<string, unknown>) =>
      typeof l.payload === 'object';
    await bridge.waitForLog(() => bridge.logs.filter(isPayload).length >= 2);
    const lines = bridge.logs.filter(isPayload);
    expect(lines).to.have.length(2);
    for (const line of lines) {
      expect(line.level).to.equal('info');
      const payload = line.payload as { attachments: unknown[] };
      expect(payload).to.include({ ext_msg_id: '<dry-run@example.net>' });
      expect(payload.attachments).to.deep.equal([
        { name: 'blob.bin', file: '<4000 base64 chars>' },
      ]);
      expect(JSON.stringify(line)).not.to.include(attachment.file);
    }
  });

  it('leaves nothing in <spoolDir>/tmp/ after a message, accepted or refused', async () => {
    const ok = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'one' }),
    });
    expect(ok.code).to.equal(250);
    const refused = await sendRaw({
      port: bridge.smtpPort,
      to: ['nobody@unrouted.test'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'two' }),
    });
    expect(refused.code).to.equal(550);
    const oversize = await smtpDialog(bridge.smtpPort, [
      'EHLO client.example.net',
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<support@example.com>',
      'DATA',
      `${makeMessage({ Subject: 'big' }, 'y'.repeat(30000))}\r\n.\r\n`,
      'QUIT',
    ]);
    expect(oversize[5]).to.match(/^552 5\.3\.4 /);
    expect(await readdir(join(bridge.spoolDir, 'tmp'))).to.deep.equal([]);
    expect(await readdir(join(bridge.spoolDir, 'dry-run'))).to.have.length(1);
  });
});

describe('a client disconnecting during DATA', () => {
  let bridge: TestBridge;

  beforeEach(async () => {
    bridge = await startBridge({ delivery: { mode: 'sync' }, routes: ROUTES });
  });
  afterEach(async () => {
    await bridge.close();
  });

  /** Opens a session up to the 354 of DATA. */
  async function openData() {
    return (await openDataSession(bridge.smtpPort)).socket;
  }

  async function expectAbortLogged(): Promise<void> {
    const line = await bridge.waitForLog(l =>
      String(l.message).includes('client disconnected'),
    );
    expect(line.level).to.equal('info');
    expect(line).not.to.have.property('stack');
    expect(bridge.logs.filter(l => l.level === 'error')).to.deep.equal([]);
  }

  it('removes the partial file of a large message, and logs it below error', async () => {
    const tmp = join(bridge.spoolDir, 'tmp');
    const watcher = watch(tmp);
    const created = once(watcher, 'change');
    const socket = await openData();
    // more than a small message (kept in memory until its end): it streams to a file
    const line70 = `${'x'.repeat(70)}\r\n`;
    socket.write(`Subject: cut off\r\n\r\n${line70.repeat(3000)}`);
    // the message is being received: its file was created
    await created;
    watcher.close();
    expect(await readdir(tmp)).to.have.length(1);
    socket.destroy();

    await expectAbortLogged();
    expect(await readdir(tmp)).to.deep.equal([]);
  });

  it('writes nothing for a small message cut off, and logs it below error', async () => {
    const socket = await openData();
    socket.write(`Subject: cut off\r\n\r\n${'x'.repeat(70)}\r\n`);
    socket.destroy();

    await expectAbortLogged();
    expect(await readdir(join(bridge.spoolDir, 'tmp'))).to.deep.equal([]);
    const bodies = await readdir(join(bridge.spoolDir, 'dry-run')).catch(
      () => [],
    );
    expect(bodies).to.deep.equal([]);
  });
});

describe('dry-run, then a token', () => {
  const t = useBridge();

  it('a message written to dry-run is posted when resent once a token is set (regression)', async () => {
    // first run: no token, dry-run
    await t.start(
      { delivery: { mode: 'sync' }, routes: ROUTES },
      { keepSpool: true },
    );
    const spoolDir = t.bridge.spoolDir;
    expect(t.bridge.daemon.dryRun).to.equal(true);
    const raw = makeMessage({
      From: 'jane@example.net',
      Subject: 'tried in dry-run',
      'Message-ID': '<dry-run-then-real@example.net>',
    });
    const first = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw,
    });
    expect(first.code).to.equal(250);
    await t.bridge.close();
    // second run on the same spool, now with the API: the sender resends the message
    await t.start(
      { delivery: { mode: 'sync' }, api: apiAt(t.api.url), routes: ROUTES },
      { spoolDir },
    );
    const second = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw,
    });
    expect(second.code).to.equal(250);
    // dry-run delivered nothing and recorded nothing: the resend is posted
    expect(t.api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-support',
    ]);
  });
});

// Issue 16: a mistyped token (MAILBRIDGE_API_TOKNE) made a daemon that answered 250 for any
// domain, logged "message delivered", and posted nothing.
describe('dry-run is said loudly, and only on loopback (regression)', () => {
  const t = useBridge();
  const START =
    /^DRY-RUN: no api\.token, so mail is accepted and NOTHING IS POSTED/;
  const NOT_POSTED = 'message NOT POSTED (dry-run: no api.token)';

  for (const mode of ['queue', 'sync', 'hybrid'] as const) {
    it(`${mode} mode: one warn at start, one warn per message, never "message delivered"`, async () => {
      // a postmaster route: the start's only warning is dry-run's
      const routes = [{ ...ROUTES[0]!, postmaster: true }, ...ROUTES.slice(1)];
      const bridge = await t.start({ delivery: { mode }, routes });
      expect(bridge.daemon.dryRun).to.equal(true);
      const ids: string[] = [];
      for (const subject of ['one', 'two']) {
        const sent = await sendRaw({
          port: bridge.smtpPort,
          to: ['support@example.com'],
          raw: makeMessage({ From: 'jane@example.net', Subject: subject }),
        });
        expect(sent.code, sent.response).to.equal(250);
        const id = /as (\S+)/.exec(sent.response)?.[1];
        expect(id, sent.response).to.be.a('string');
        ids.push(id!);
        // the message's end: said as not posted, or (the defect) as delivered or "dry-run"
        const end = await bridge.waitForLog(
          l =>
            l.queueId === id &&
            (l.message === 'message delivered' ||
              l.message === 'message dry-run' ||
              (l.message === NOT_POSTED && l.level === 'warn')),
        );
        expect(end).to.include({ message: NOT_POSTED, outcome: 'dry-run' });
      }
      const warnings = bridge.logs.filter(l => l.level === 'warn');
      expect(warnings).to.have.length(3);
      expect(String(warnings[0]?.message)).to.match(START);
      expect(warnings[0]?.dryRunDir).to.equal(join(bridge.spoolDir, 'dry-run'));
      expect(warnings.slice(1).map(l => [l.message, l.queueId])).to.deep.equal(
        ids.map(id => [NOT_POSTED, id]),
      );
      expect(bridge.logs.map(l => l.message)).not.to.include(
        'message delivered',
      );
      expect(await readdir(join(bridge.spoolDir, 'dry-run'))).to.have.length(2);
    });
  }

  it('without a token the daemon refuses a listener off loopback, naming api.token', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-test-'));
    let started: TestBridge | undefined;
    let error: unknown;
    try {
      started = await startBridge(
        { smtp: { host: '0.0.0.0' }, routes: ROUTES },
        { spoolDir },
      );
    } catch (err) {
      error = err;
    } finally {
      await started?.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
    expect(started, 'a daemon started').to.equal(undefined);
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as Error).message).to.match(
      /^api\.token: required when smtp\.host \(0\.0\.0\.0\) is not a loopback address/,
    );
  });
});
