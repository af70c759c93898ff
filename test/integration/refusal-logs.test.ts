// Every SMTP refusal of the running daemon gets one log line of the same shape (client address,
// session id, HELO name, command, address concerned, code, reason) at info, and the RCPT and
// MAIL refusals their counter: one test per kind of refusal, over a real SMTP dialogue.
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { domainWithAuth } from '../helpers/dkim.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import {
  makeMessage,
  openSession,
  sendRaw,
  smtpDialog,
} from '../helpers/smtp-client.js';

const HELO = 'client.example.net';
const PASSWORD = 'correct horse battery';
const USERS = [{ username: 'forwarder', password: PASSWORD }];
const MAX_SIZE = 2000;
/** a word of every message body sent here: it must appear in no log line */
const BODY_MARK = 'body-marker-7f3a';

type Line = Record<string, unknown>;

/** The value of a counter's series with this reason. */
async function counted(
  metric: {
    get(): Promise<{ values: Array<{ labels: object; value: number }> }>;
  },
  reason: string,
): Promise<number | undefined> {
  return (await metric.get()).values.find(
    v => (v.labels as { reason?: unknown }).reason === reason,
  )?.value;
}

describe('refusal log lines', () => {
  const t = useBridge();

  function start(
    smtp: Record<string, unknown> = {},
    extra: Record<string, unknown> = {},
  ): Promise<TestBridge> {
    const withSize: Record<string, unknown> = {
      maxMessageSize: MAX_SIZE,
      ...smtp,
    };
    return t.start({
      api: apiAt(t.api.url),
      smtp: withSize as Record<string, never>,
      routes: [
        { match: 'support@example.com', mailbox_id: 'mb-support' },
        { match: '*@lists.example.com', mailbox_id: 'mb-lists' },
      ],
      ...extra,
    });
  }

  /**
   * The one refusal line of `command` with `code`: its common fields checked; it is returned
   * for the checks of its kind. No line anywhere carries a password or a body.
   */
  async function refusal(
    bridge: TestBridge,
    command: string,
    code: number,
    want: { reason: string; address?: string; helo?: string | undefined },
  ): Promise<Line> {
    const line = await bridge.waitForLog(
      l => l.command === command && l.code === code,
    );
    const all = bridge.logs.filter(
      l => l.command === command && l.code === code,
    );
    expect(all, 'one line per refusal').to.have.length(1);
    expect(line).to.include({
      remoteAddress: '127.0.0.1',
      reason: want.reason,
    });
    expect(line.sessionId).to.be.a('string').and.not.equal('');
    expect(line.helo).to.equal('helo' in want ? want.helo : HELO);
    expect(line.address).to.equal(want.address);
    const text = JSON.stringify(bridge.logs);
    expect(text).not.to.include(PASSWORD);
    expect(text).not.to.include(BODY_MARK);
    return line;
  }

  it('RCPT: a recipient no route takes (550 5.1.1, the relay refusal)', async () => {
    const bridge = await start();
    const replies = await smtpDialog(bridge.smtpPort, [
      `EHLO ${HELO}`,
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<someone@elsewhere.test>',
      'QUIT',
    ]);
    expect(replies[3]).to.match(/^550 5\.1\.1 /);
    const line = await refusal(bridge, 'RCPT', 550, {
      reason: 'no_route',
      address: 'someone@elsewhere.test',
    });
    expect(line.level).to.equal('info');
    const { rcptRefused } = bridge.daemon.metrics;
    expect(await counted(rcptRefused, 'no_route')).to.equal(1);
  });

  it('RCPT: past smtp.maxRecipients (452 4.5.3, smtp-server refuses it itself)', async () => {
    const bridge = await start({ maxRecipients: 1 });
    const replies = await smtpDialog(bridge.smtpPort, [
      `EHLO ${HELO}`,
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<a@lists.example.com>',
      'RCPT TO:<b@lists.example.com>',
      'QUIT',
    ]);
    expect(replies[4]).to.match(/^452 4\.5\.3 /);
    const line = await refusal(bridge, 'RCPT', 452, {
      reason: 'too_many',
      address: 'b@lists.example.com',
    });
    expect(line.level).to.equal('info');
    const { rcptRefused } = bridge.daemon.metrics;
    expect(await counted(rcptRefused, 'too_many')).to.equal(1);
  });

  it('MAIL FROM: a SIZE over the limit (552 5.3.4, smtp-server refuses it itself)', async () => {
    const bridge = await start();
    const replies = await smtpDialog(bridge.smtpPort, [
      `EHLO ${HELO}`,
      `MAIL FROM:<jane@example.net> SIZE=${MAX_SIZE + 1}`,
      'QUIT',
    ]);
    expect(replies[2]).to.match(/^552 5\.3\.4 /);
    const line = await refusal(bridge, 'MAIL', 552, {
      reason: 'size',
      address: 'jane@example.net',
    });
    expect(line).to.include({
      level: 'info',
      size: MAX_SIZE + 1,
      maxMessageSize: MAX_SIZE,
    });
    const { mailRefused } = bridge.daemon.metrics;
    expect(await counted(mailRefused, 'size')).to.equal(1);
  });

  it('MAIL FROM: authentication required (530 5.7.0)', async () => {
    const bridge = await start({
      auth: { users: USERS, allowInsecure: true, required: true },
    });
    const replies = await smtpDialog(bridge.smtpPort, [
      `EHLO ${HELO}`,
      'MAIL FROM:<jane@example.net>',
      'QUIT',
    ]);
    expect(replies[2]).to.match(/^530 5\.7\.0 /);
    const line = await refusal(bridge, 'MAIL', 530, {
      reason: 'auth',
      address: 'jane@example.net',
    });
    expect(line.level).to.equal('info');
    const { mailRefused } = bridge.daemon.metrics;
    expect(await counted(mailRefused, 'auth')).to.equal(1);
  });

  it('AUTH: bad credentials (535 5.7.8): the username, never the password', async () => {
    const bridge = await start({ auth: { users: USERS, allowInsecure: true } });
    const token = Buffer.from(`\0forwarder\0${PASSWORD}!`).toString('base64');
    const replies = await smtpDialog(bridge.smtpPort, [
      `EHLO ${HELO}`,
      `AUTH PLAIN ${token}`,
      'QUIT',
    ]);
    expect(replies[2]).to.match(/^535 5\.7\.8 /);
    const line = await refusal(bridge, 'AUTH', 535, {
      reason: 'credentials',
    });
    expect(line).to.include({ level: 'info', username: 'forwarder' });
    expect(JSON.stringify(bridge.logs)).not.to.include(token);
  });

  it('CONNECT: a client outside smtp.allowedNetworks (554 5.7.1)', async () => {
    const bridge = await start({ allowedNetworks: ['10.0.0.0/8'] });
    const [greeting] = await smtpDialog(bridge.smtpPort, []);
    expect(greeting).to.match(/^554 5\.7\.1 /);
    const line = await refusal(bridge, 'CONNECT', 554, {
      reason: 'network',
      helo: undefined,
    });
    expect(line.level).to.equal('info');
  });

  it('CONNECT: past smtp.connectionRatePerClient (421 4.7.0, rate limited)', async () => {
    const bridge = await start({ connectionRatePerClient: 1 });
    await smtpDialog(bridge.smtpPort, [`EHLO ${HELO}`, 'QUIT']);
    const [greeting] = await smtpDialog(bridge.smtpPort, []);
    expect(greeting).to.match(/^421 4\.7\.0 /);
    const line = await refusal(bridge, 'CONNECT', 421, {
      reason: 'rate',
      helo: undefined,
    });
    expect(line.level).to.equal('info');
  });

  it('CONNECT: past smtp.maxClients (421, smtp-server refuses it itself)', async () => {
    const bridge = await start({ maxClients: 1, maxConnectionsPerClient: 5 });
    // holds the one place until the end of the test
    const open = await openSession(bridge.smtpPort);
    try {
      const [greeting] = await smtpDialog(bridge.smtpPort, []);
      expect(greeting).to.match(/^421 .*Too many connected clients/);
      const line = await refusal(bridge, 'CONNECT', 421, {
        reason: 'max_clients',
        helo: undefined,
      });
      expect(line.level).to.equal('info');
    } finally {
      open.socket.end('QUIT\r\n');
    }
  });

  it('DATA: a message over smtp.maxMessageSize (552): its outcome line is the refusal line', async () => {
    const bridge = await start();
    const body = `${BODY_MARK} ${'x'.repeat(MAX_SIZE)}`;
    const replies = await smtpDialog(bridge.smtpPort, [
      `EHLO ${HELO}`,
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<support@example.com>',
      'DATA',
      `${makeMessage({ Subject: 'big' }, `${body}\r\n`)}\r\n.`,
      'QUIT',
    ]);
    expect(replies[5]).to.match(/^552 /);
    const line = await refusal(bridge, 'DATA', 552, {
      reason: 'size',
      address: 'jane@example.net',
    });
    expect(line).to.include({ level: 'info', outcome: 'rejected' });
  });

  it('DATA: sender authentication not concluded, DNS failing (451): the outcome line warns', async () => {
    // config/test.yaml's resolver refuses every lookup: the judgement cannot be made
    const bridge = await start(
      {},
      {
        routes: [
          {
            match: 'secure@example.com',
            mailbox_id: 'mb-secure',
            senderAuth: 'enforce',
          },
        ],
      },
    );
    const sent = await sendRaw({
      port: bridge.smtpPort,
      from: 'jane@customer.test',
      to: ['secure@example.com'],
      raw: makeMessage({ From: 'jane@customer.test' }, `${BODY_MARK}\r\n`),
      transport: { name: HELO },
    });
    expect(sent.code).to.equal(451);
    const line = await refusal(bridge, 'DATA', 451, {
      reason: 'sender_auth',
      address: 'jane@customer.test',
    });
    // a temporary refusal is a warning (STYLE: warn for a TemporaryError), above info
    expect(line).to.include({ level: 'warn', outcome: 'deferred' });
  });

  describe('with a loopback DNS server', () => {
    let dns: TestDnsServer;
    before(async () => {
      dns = await startDnsServer();
    });
    after(() => dns.close());

    it('DATA: a DMARC fail of a p=reject domain (550 5.7.1)', async () => {
      await domainWithAuth(dns, 'bank.test', {
        spf: 'v=spf1 ip4:192.0.2.1 -all',
        dmarc: 'v=DMARC1; p=reject',
      });
      const bridge = await start(
        {},
        {
          auth: { dns: { servers: [dns.address], timeoutMs: 1000 } },
          routes: [
            {
              match: 'secure@example.com',
              mailbox_id: 'mb-secure',
              senderAuth: 'enforce',
            },
          ],
        },
      );
      const sent = await sendRaw({
        port: bridge.smtpPort,
        from: 'ceo@bank.test',
        to: ['secure@example.com'],
        raw: makeMessage({ From: 'ceo@bank.test' }, `${BODY_MARK}\r\n`),
        transport: { name: HELO },
      });
      expect(sent.code).to.equal(550);
      const line = await refusal(bridge, 'DATA', 550, {
        reason: 'sender_auth',
        address: 'ceo@bank.test',
      });
      expect(line).to.include({ level: 'info', outcome: 'rejected' });
      expect(t.api.requests).to.have.length(0);
    });
  });
});
