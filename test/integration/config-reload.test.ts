// SIGHUP on a real `serve`: the route table and the limits change without a restart, a session
// open across the reload goes on, restart-only keys keep their value, an invalid file changes
// nothing; and the same through Daemon.reload in process.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load-config.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import {
  makeMessage,
  openSession,
  sendRaw,
  type RawSession,
} from '../helpers/smtp-client.js';
import {
  freePort,
  startCli,
  type CliProcess,
} from '../helpers/spawn-daemon.js';
import { waitForLogCount } from '../helpers/wait-for.js';

/** Sends one command line and waits for its final reply; returns that reply. */
async function command(session: RawSession, line: string): Promise<string> {
  session.clear();
  session.socket.write(`${line}\r\n`);
  await session.waitFor(/^\d{3} .*\r\n/m);
  return /^\d{3} .*$/m.exec(session.replies())?.[0] ?? '';
}

const MESSAGE = makeMessage({
  From: 'jane@example.net',
  To: 'a@example.com',
  Subject: 'across a reload',
  'Message-ID': '<reload-1@example.net>',
});

describe('configuration reload (SIGHUP)', function () {
  this.timeout(30_000);
  let dir: string;
  let file: string;
  let api: FakeApi;
  let daemon: CliProcess | undefined;

  /** The --config file: a route for a@ and the limits given. */
  function writeConfig(extra: Record<string, unknown>): void {
    writeFileSync(
      file,
      stringify({
        api: apiAt(api.url),
        routes: [{ match: 'a@example.com', mailbox_id: 'mb-a' }],
        ...extra,
      }),
    );
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailbridge-reload-'));
    file = join(dir, 'mailbridge.yaml');
    api = await startFakeApi();
  });
  afterEach(async () => {
    await daemon?.kill();
    daemon = undefined;
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(): Promise<number> {
    const port = await freePort();
    daemon = startCli(['serve', '--config', file], {
      MAILBRIDGE_SMTP_PORT: String(port),
      MAILBRIDGE_HTTP_PORT: String(await freePort()),
      MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    await daemon.waitForLog('mailbridge started');
    return port;
  }

  /** SIGHUP, then the reload's outcome line (the `n`th of its kind). */
  async function reload(
    message: string,
    n: number,
  ): Promise<Record<string, unknown>> {
    const cli = daemon!;
    cli.child.kill('SIGHUP');
    await waitForLogCount(cli, message, n, 15_000);
    return cli.logs.filter(l => l.message === message)[n - 1]!;
  }

  it('puts new routes and limits in force, keeps an open session, and ignores a bad file', async () => {
    writeConfig({ smtp: { maxRecipients: 5 } });
    const port = await serve();
    const to = ['a@example.com', 'b@example.com'];

    // before: b@ has no route
    const before = await sendRaw({ port, to: ['b@example.com'], raw: MESSAGE });
    expect(before.code).to.equal(550);

    // a session open across the reload, one recipient in
    const session = await openSession(port);
    expect(await command(session, 'EHLO client.example.net')).to.match(/^250 /);
    expect(await command(session, 'MAIL FROM:<jane@example.net>')).to.match(
      /^250 /,
    );
    expect(await command(session, 'RCPT TO:<a@example.com>')).to.match(/^250 /);

    writeConfig({
      smtp: { maxRecipients: 2 },
      delivery: { mode: 'sync' },
      routes: [
        { match: 'a@example.com', mailbox_id: 'mb-a' },
        { match: 'b@example.com', mailbox_id: 'mb-b' },
      ],
    });
    const reloaded = await reload('configuration reloaded', 1);
    expect(reloaded.level).to.equal('info');
    expect(reloaded.changed).to.have.members(['routes', 'smtp.maxRecipients']);
    const restart = daemon!.logs.find(
      l =>
        l.message ===
        'configuration changes need a restart; their running values stay',
    );
    expect(restart).to.include({ level: 'warn' });
    expect(restart?.keys).to.deep.equal(['delivery.mode']);

    // the open session goes on, under the new table
    expect(await command(session, 'RCPT TO:<b@example.com>')).to.match(/^250 /);
    expect(await command(session, 'DATA')).to.match(/^354 /);
    // delivery.mode stayed queue: "queued as"
    expect(await command(session, `${MESSAGE}\r\n.`)).to.match(
      /^250 2\.6\.0 OK: queued as /,
    );
    await command(session, 'QUIT');
    const posted = await api.waitForRequests(2);
    expect(posted.map(r => r.body.mailbox_id)).to.have.members([
      'mb-a',
      'mb-b',
    ]);

    // a new session: the third recipient is past the new limit
    const next = await openSession(port);
    await command(next, 'EHLO client.example.net');
    await command(next, 'MAIL FROM:<jane@example.net>');
    for (const rcpt of [...to, 'a+x@example.com']) {
      const reply = await command(next, `RCPT TO:<${rcpt}>`);
      expect(reply.slice(0, 3), rcpt).to.equal(
        rcpt === 'a+x@example.com' ? '452' : '250',
      );
    }
    await command(next, 'QUIT');

    // an invalid file: logged at error, the running configuration stays
    writeFileSync(
      file,
      stringify({
        api: apiAt(api.url),
        smtp: { maxRecipients: 0 },
        routes: [{ match: 'not an address' }],
      }),
    );
    const refused = await reload(
      'configuration not reloaded; the running one stays',
      1,
    );
    expect(refused.level).to.equal('error');
    expect(refused.problems).to.deep.equal([
      'smtp.maxRecipients: Too small: expected number to be >0',
      'routes.0.match: must be an address, "*@domain" or "*"',
    ]);
    const still = await sendRaw({ port, to, raw: MESSAGE });
    expect(still.code).to.equal(250);

    daemon!.child.kill('SIGTERM');
    expect(await daemon!.exited).to.deep.equal({ code: 0, signal: null });
  });

  it('in a cluster, the primary passes it on and every worker takes the new routes', async function () {
    // three processes start through tsx on a loaded machine
    this.timeout(90_000);
    writeConfig({ cluster: { workers: 2 } });
    const port = await serve();
    await waitForLogCount(daemon!, 'worker started', 2, 15_000);
    writeConfig({
      cluster: { workers: 2 },
      routes: [
        { match: 'a@example.com', mailbox_id: 'mb-a' },
        { match: 'b@example.com', mailbox_id: 'mb-b' },
      ],
    });
    // the primary, then each worker, with its pid
    await reload('configuration reloaded', 3);
    const reloaded = daemon!.logs.filter(
      l => l.message === 'configuration reloaded',
    );
    const workers = daemon!.logs.filter(l => l.message === 'worker started');
    expect(new Set(reloaded.map(l => l.pid))).to.include.all.members(
      workers.map(l => l.pid),
    );
    expect(reloaded.map(l => l.changed)).to.deep.equal([
      ['routes'],
      ['routes'],
      ['routes'],
    ]);
    // the primary hands connections to its workers in turn (round-robin): both are asked
    for (let i = 0; i < 4; i++) {
      const sent = await sendRaw({ port, to: ['b@example.com'], raw: MESSAGE });
      expect(sent.code, sent.response).to.equal(250);
    }
    daemon!.child.kill('SIGTERM');
    expect(await daemon!.exited).to.deep.equal({ code: 0, signal: null });
  });

  it('names a rotated token by key only', async () => {
    writeConfig({});
    await serve();
    writeFileSync(
      file,
      stringify({
        api: { ...apiAt(api.url), token: 'rotated-secret-value' },
        routes: [{ match: 'a@example.com', mailbox_id: 'mb-a' }],
      }),
    );
    const reloaded = await reload('configuration reloaded', 1);
    const lines = JSON.stringify(daemon!.logs);
    expect(lines).to.not.include('rotated-secret-value');
    // a rotated token applies at once (token-reload.test.ts): named, never written out
    expect(reloaded.changed).to.deep.equal(['api.token']);
  });
});

describe('Daemon.reload in process', () => {
  const t = useBridge();

  /** The bridge's configuration with `change` over it, as a reload would load it. */
  type Tree = { smtp: Record<string, unknown>; log: Record<string, unknown> };
  function loadWith(change: (config: Tree) => void) {
    return () => {
      const tree = structuredClone(t.bridge.config) as unknown as Tree;
      change(tree);
      return loadConfig({
        env: { NODE_ENV: 'test' },
        overrides: tree as never,
      });
    };
  }

  it('changes maxMessageSize for the next transaction', async () => {
    await t.start({
      api: apiAt(t.api.url),
      smtp: { maxMessageSize: 100_000 },
    });
    const port = t.bridge.smtpPort;
    const big = makeMessage(
      { From: 'a@example.net', To: 'support@example.com', Subject: 'big' },
      `${'x'.repeat(76)}\r\n`.repeat(2000),
    );
    const refused = await sendRaw({
      port,
      to: ['support@example.com'],
      raw: big,
    });
    expect(refused.code).to.equal(552);
    const result = t.bridge.daemon.reload(
      loadWith(c => (c.smtp.maxMessageSize = 1_000_000)),
    );
    expect(result).to.deep.equal({
      reloaded: true,
      applied: ['smtp.maxMessageSize'],
      needsRestart: [],
    });
    const taken = await sendRaw({
      port,
      to: ['support@example.com'],
      raw: big,
    });
    expect(taken.code).to.equal(250);
  });

  it('puts a new log level in force', async () => {
    await t.start({ api: apiAt(t.api.url), log: { level: 'debug' } });
    const reloaded = (l: Record<string, unknown>) =>
      l.message === 'configuration reloaded';
    // at warn, the reload's own info line is not written...
    t.bridge.daemon.reload(loadWith(c => (c.log.level = 'warn')));
    // ...and back at debug it is: the lines come in order, so by then the first would be here
    t.bridge.daemon.reload(loadWith(c => (c.log.level = 'debug')));
    await t.bridge.waitForLog(reloaded);
    expect(t.bridge.logs.filter(reloaded).map(l => l.changed)).to.deep.equal([
      ['log.level'],
    ]);
  });

  it('a recipient whose route a reload took away since RCPT: 451 for the message, never 250 and nowhere', async () => {
    await t.start({
      api: apiAt(t.api.url),
      routes: [
        { match: 'a@example.com', mailbox_id: 'mb-a' },
        { match: 'b@example.com', mailbox_id: 'mb-b' },
      ],
    });
    const port = t.bridge.smtpPort;
    const session = await openSession(port);
    await command(session, 'EHLO client.example.net');
    await command(session, 'MAIL FROM:<jane@example.net>');
    expect(await command(session, 'RCPT TO:<a@example.com>')).to.match(/^250 /);
    expect(await command(session, 'RCPT TO:<b@example.com>')).to.match(/^250 /);
    const result = t.bridge.daemon.reload(() =>
      loadConfig({
        env: { NODE_ENV: 'test' },
        overrides: {
          ...(structuredClone(t.bridge.config) as unknown as object),
          routes: [{ match: 'a@example.com', mailbox_id: 'mb-a' }],
        } as never,
      }),
    );
    expect(result.applied).to.deep.equal(['routes']);
    // the new table, like the first, has no postmaster route: said again
    const postmaster = (l: Record<string, unknown>) =>
      String(l.message).startsWith('no route takes postmaster mail');
    await t.bridge.waitForLog(
      l => postmaster(l) && t.bridge.logs.filter(postmaster).length === 2,
    );
    expect(await command(session, 'DATA')).to.match(/^354 /);
    expect(await command(session, `${MESSAGE}\r\n.`)).to.match(/^451 4\.3\.0 /);
    const line = await t.bridge.waitForLog(l => l.code === 451);
    expect(line.message).to.equal(
      'message deferred: The route table changed during this transaction; try again',
    );
    // the client's next try: b@ is refused where it should be, a@ goes through
    expect(await command(session, 'MAIL FROM:<jane@example.net>')).to.match(
      /^250 /,
    );
    expect(await command(session, 'RCPT TO:<a@example.com>')).to.match(/^250 /);
    expect(await command(session, 'RCPT TO:<b@example.com>')).to.match(/^550 /);
    expect(await command(session, 'DATA')).to.match(/^354 /);
    expect(await command(session, `${MESSAGE}\r\n.`)).to.match(/^250 /);
    await command(session, 'QUIT');
    const posted = await t.api.waitForRequests(1);
    expect(posted.map(r => r.body.mailbox_id)).to.deep.equal(['mb-a']);
  });
});
