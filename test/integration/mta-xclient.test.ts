// XCLIENT and XFORWARD from trusted relays (smtp.xclient, smtp.xforward): the client a trusted
// relay names is the one SPF judges and the outcome line logs; an untrusted peer is neither
// offered the commands nor allowed them (550 5.7.0). Against a loopback DNS server whose SPF
// record lists the forwarded client (192.0.2.7), not the relay (127.0.0.1).
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { domainWithAuth } from '../helpers/dkim.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import {
  makeMessage,
  openSession,
  smtpDialog,
} from '../helpers/smtp-client.js';

/** The client the relay speaks for: the only address relayed.test's SPF record allows. */
const CLIENT = '192.0.2.7';

describe('XCLIENT and XFORWARD from trusted relays', function () {
  this.timeout(10_000);
  let dns: TestDnsServer;
  const t = useBridge();

  before(async () => {
    dns = await startDnsServer();
    await domainWithAuth(dns, 'relayed.test', {
      spf: `v=spf1 ip4:${CLIENT} -all`,
      dmarc: 'v=DMARC1; p=reject',
    });
  });
  after(() => dns.close());

  /** A bridge whose route enforces sender authentication: SPF decides the reply. */
  function start(smtp: Record<string, unknown>): Promise<TestBridge> {
    return t.start({
      api: apiAt(t.api.url),
      smtp: { port: 0, closeTimeoutMs: 500, ...smtp },
      auth: { dns: { servers: [dns.address], timeoutMs: 1000 } },
      routes: [
        {
          match: 'secure@helpdesk.test',
          mailbox_id: 'mb-secure',
          senderAuth: 'enforce',
        },
      ],
    });
  }

  /** The commands of one message from jane@relayed.test, after what the relay says first. */
  function transaction(): string[] {
    const raw = makeMessage({
      From: 'jane@relayed.test',
      To: 'secure@helpdesk.test',
      Subject: 'Relayed',
    });
    return [
      'MAIL FROM:<jane@relayed.test>',
      'RCPT TO:<secure@helpdesk.test>',
      'DATA',
      `${raw}.\r\n`,
      'QUIT',
    ];
  }

  /** The outcome line of the message a 250 reply queued. */
  function outcomeOf(
    bridge: TestBridge,
    reply: string,
  ): Promise<Record<string, unknown>> {
    const queueId = queueIdOf(reply);
    return bridge.waitForLog(l => l.queueId === queueId && 'outcome' in l);
  }

  it('XCLIENT from a trusted network: SPF and the outcome line see the client', async () => {
    const bridge = await start({ xclient: ['127.0.0.0/8'] });
    const replies = await smtpDialog(bridge.smtpPort, [
      'EHLO relay.test',
      `XCLIENT ADDR=${CLIENT} NAME=mx.relayed.test HELO=mx.relayed.test`,
      'EHLO relay.test',
      ...transaction(),
    ]);
    expect(replies[1]).to.match(/^250[- ]XCLIENT /m);
    // the session starts over as the client's: a new greeting
    expect(replies[2]).to.match(/^220 /);
    // XCLIENT is spent: the client cannot name itself again
    expect(replies[3]).not.to.match(/XCLIENT/);
    const dataReply = replies[7]!;
    expect(dataReply).to.match(/^250 /);
    const line = await outcomeOf(bridge, dataReply);
    expect(line.remoteAddress).to.equal(CLIENT);
    expect(line.relay).to.equal('127.0.0.1');
    expect(line.authResults).to.match(/^dmarc=pass .*spf=pass/);
    await t.api.waitForRequests(1);
    expect(t.api.requests[0]!.body.from).to.equal('jane@relayed.test');
  });

  it('XFORWARD from a trusted address: the transaction is the client’s', async () => {
    const bridge = await start({ xforward: ['127.0.0.1'] });
    const replies = await smtpDialog(bridge.smtpPort, [
      'EHLO relay.test',
      `XFORWARD NAME=mx.relayed.test ADDR=${CLIENT} PROTO=ESMTP HELO=mx.relayed.test SOURCE=REMOTE`,
      ...transaction(),
    ]);
    expect(replies[1]).to.match(/^250[- ]XFORWARD /m);
    expect(replies[1]).not.to.match(/XCLIENT/);
    expect(replies[2]).to.match(/^250 /);
    const dataReply = replies[6]!;
    expect(dataReply).to.match(/^250 /);
    const line = await outcomeOf(bridge, dataReply);
    expect(line.remoteAddress).to.equal(CLIENT);
    expect(line.relay).to.equal('127.0.0.1');
    expect(line.authResults).to.match(/^dmarc=pass .*spf=pass/);
  });

  it('an untrusted peer is not offered either command and is refused both', async () => {
    // trusted: a network the test's client (127.0.0.1) is not in
    const bridge = await start({
      xclient: ['192.0.2.0/24'],
      xforward: ['192.0.2.0/24'],
    });
    const replies = await smtpDialog(bridge.smtpPort, [
      'EHLO relay.test',
      `XCLIENT ADDR=${CLIENT}`,
      `XFORWARD ADDR=${CLIENT}`,
      ...transaction(),
    ]);
    expect(replies[1]).not.to.match(/XCLIENT|XFORWARD/);
    expect(replies[2]).to.match(/^550 5\.7\.0 /);
    expect(replies[3]).to.match(/^550 5\.7\.0 /);
    // still the relay's own address: SPF fails, and the enforcing route refuses
    expect(replies[7]).to.match(/^550 5\.7\.1 Sender authentication failed/);
    const line = await bridge.waitForLog(l => l.outcome === 'rejected');
    expect(line.remoteAddress).to.equal('127.0.0.1');
    expect(line).not.to.have.property('relay');
    expect(t.api.requests).to.have.length(0);
  });

  it('XCLIENT: the per-client session limit counts the client, not the relay', async () => {
    const bridge = await start({
      xclient: ['127.0.0.1'],
      maxConnectionsPerClient: 1,
    });
    // the relay's first session, handed over to the client; it stays open
    const first = await openSession(bridge.smtpPort);
    first.socket.write(`EHLO relay.test\r\nXCLIENT ADDR=${CLIENT}\r\n`);
    await first.waitFor(/^220 /m);
    first.socket.write('EHLO relay.test\r\nMAIL FROM:<jane@relayed.test>\r\n');
    await first.waitFor(/^250 2\.1\.0 /m);
    try {
      // the relay's second session: admitted (the first counts as the client's now) ...
      const replies = await smtpDialog(bridge.smtpPort, [
        'EHLO relay.test',
        `XCLIENT ADDR=${CLIENT}`,
        'EHLO relay.test',
        // 421: smtp-server closes the session after it
        'MAIL FROM:<jane@relayed.test>',
      ]);
      expect(replies[0]).to.match(/^220 /);
      // ... but the same client is past its limit (smtp-server's enhanced code at MAIL FROM)
      expect(replies[4]).to.match(
        new RegExp(`^421 4\\.4\\.2 Too many connections from ${CLIENT}`),
      );
    } finally {
      first.socket.destroy();
    }
  });

  it('neither is offered by default', async () => {
    const bridge = await start({});
    const replies = await smtpDialog(bridge.smtpPort, [
      'EHLO relay.test',
      `XFORWARD ADDR=${CLIENT}`,
      'QUIT',
    ]);
    expect(replies[1]).not.to.match(/XCLIENT|XFORWARD/);
    expect(replies[2]).to.match(/^550 5\.7\.0 /);
  });
});
