// Sender authentication against a real DNS server on loopback, with real DKIM signatures: what
// each route policy does (off, record, enforce), the thread guard, and DNS failures.
import { expect } from 'chai';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { QueueEntry } from '../../src/spool/queue-entry.js';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { domainWithAuth, type AuthDomain } from '../helpers/dkim.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { runCli } from '../helpers/run-cli.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

/** A reply into an existing thread, from `from`. */
function reply(from: string, to: string): string {
  return makeMessage(
    {
      From: from,
      To: to,
      Subject: 'Re: order 42',
      'Message-ID': `<${Math.random().toString(36).slice(2)}@client.test>`,
      'In-Reply-To': '<thread-42@helpdesk.test>',
    },
    'Please send the refund to my new account.\r\n',
  );
}

describe('sender authentication (SPF, DKIM, DMARC) with a loopback DNS server', () => {
  let dns: TestDnsServer;
  /** SPF lists 127.0.0.1, DKIM key published, DMARC p=reject: a genuine sender signs */
  let genuine: AuthDomain;
  const t = useBridge();

  before(async () => {
    dns = await startDnsServer();
  });
  after(() => dns.close());
  beforeEach(async () => {
    dns.clear();
    genuine = await domainWithAuth(dns, 'customer.test', {
      spf: 'v=spf1 ip4:127.0.0.1 -all',
      dmarc: 'v=DMARC1; p=reject',
      dkimSelector: 's1',
    });
    // a domain whose mail never comes from here, and says so: forging it fails DMARC
    await domainWithAuth(dns, 'bank.test', {
      spf: 'v=spf1 ip4:192.0.2.1 -all',
      dmarc: 'v=DMARC1; p=reject',
    });
    await domainWithAuth(dns, 'shop.test', {
      spf: 'v=spf1 ip4:192.0.2.1 -all',
      dmarc: 'v=DMARC1; p=quarantine',
    });
    await domainWithAuth(dns, 'watch.test', {
      spf: 'v=spf1 ip4:192.0.2.1 -all',
      dmarc: 'v=DMARC1; p=none',
    });
  });

  function start(extra: Record<string, unknown> = {}): Promise<TestBridge> {
    return t.start({
      api: apiAt(t.api.url),
      delivery: { scanIntervalMs: 100 },
      auth: { dns: { servers: [dns.address], timeoutMs: 1000 } },
      routes: [
        {
          match: 'support@helpdesk.test',
          mailbox_id: 'mb-support',
          thread_from_subaddress: true,
        },
        {
          match: 'secure@helpdesk.test',
          mailbox_id: 'mb-secure',
          thread_from_subaddress: true,
          senderAuth: 'enforce',
        },
        {
          match: 'open@helpdesk.test',
          mailbox_id: 'mb-open',
          thread_from_subaddress: true,
          senderAuth: 'off',
        },
      ],
      ...extra,
    });
  }

  /** Sends and, once accepted, waits for the message's outcome line. */
  async function deliver(
    bridge: TestBridge,
    to: string,
    raw: string | Buffer,
    from: string,
  ): Promise<Record<string, unknown>> {
    const sent = await sendRaw({ port: bridge.smtpPort, from, to: [to], raw });
    expect(sent.code, sent.response).to.equal(250);
    const queueId = queueIdOf(sent.response);
    return bridge.waitForLog(
      // the delivery's line, not the accept's ("queued")
      l => l.queueId === queueId && typeof l.attempts === 'number',
    );
  }

  it('record: a genuine, signed reply keeps its thread; the outcome line says pass', async () => {
    const bridge = await start();
    const raw = await genuine.sign(
      reply('jane@customer.test', 'support+T123@helpdesk.test'),
    );
    const line = await deliver(
      bridge,
      'support+T123@helpdesk.test',
      raw,
      'jane@customer.test',
    );
    expect(line.outcome).to.equal('delivered');
    expect(line.senderAuth).to.equal('pass');
    expect(line.authResults).to.match(/^dmarc=pass .*spf=pass dkim=pass/);
    const body = t.api.requests[0]!.body;
    expect(body.thread_id).to.equal('T123');
    expect(body.reply_to_ext_msg_id).to.equal('<thread-42@helpdesk.test>');
  });

  it('record: a forged sender is posted without thread_id and reply_to_ext_msg_id', async () => {
    const bridge = await start();
    const line = await deliver(
      bridge,
      'support+T123@helpdesk.test',
      reply('ceo@bank.test', 'support+T123@helpdesk.test'),
      'ceo@bank.test',
    );
    expect(line.outcome).to.equal('delivered');
    expect(line.senderAuth).to.equal('fail');
    const body = t.api.requests[0]!.body;
    expect(body.from).to.equal('ceo@bank.test');
    expect(body).not.to.have.property('thread_id');
    expect(body).not.to.have.property('reply_to_ext_msg_id');
    expect(body.ext_msg_id).to.be.a('string');
  });

  it('record: a DMARC fail under p=none is guarded too', async () => {
    const bridge = await start();
    await deliver(
      bridge,
      'support@helpdesk.test',
      reply('news@watch.test', 'support@helpdesk.test'),
      'news@watch.test',
    );
    expect(t.api.requests[0]!.body).not.to.have.property('reply_to_ext_msg_id');
  });

  it('record: a domain without DMARC keeps its thread (verdict none)', async () => {
    dns.set('plain.test', 'TXT', ['v=spf1 ip4:192.0.2.1 -all']);
    const bridge = await start();
    const line = await deliver(
      bridge,
      'support+T9@helpdesk.test',
      reply('bob@plain.test', 'support+T9@helpdesk.test'),
      'bob@plain.test',
    );
    expect(line.senderAuth).to.equal('none');
    expect(t.api.requests[0]!.body.thread_id).to.equal('T9');
  });

  it('enforce: a DMARC fail of a p=reject domain is refused with 550 5.7.1 and never posted', async () => {
    const bridge = await start();
    const sent = await sendRaw({
      port: bridge.smtpPort,
      from: 'ceo@bank.test',
      to: ['secure@helpdesk.test'],
      raw: reply('ceo@bank.test', 'secure@helpdesk.test'),
    });
    expect(sent.code).to.equal(550);
    // (smtp-server's own 5.1.1 for a 550 is not put in front of it: enhanced-code.ts)
    expect(sent.response).to.match(/^550 5\.7\.1 .*DMARC.*bank\.test.*reject/);
    const line = await bridge.waitForLog(l => l.outcome === 'rejected');
    expect(line.code).to.equal(550);
    expect(t.api.requests).to.have.length(0);
  });

  it('enforce: a genuine sender is accepted and keeps its thread', async () => {
    const bridge = await start();
    const raw = await genuine.sign(
      reply('jane@customer.test', 'secure+T7@helpdesk.test'),
    );
    const line = await deliver(
      bridge,
      'secure+T7@helpdesk.test',
      raw,
      'jane@customer.test',
    );
    expect(line.outcome).to.equal('delivered');
    expect(t.api.requests[0]!.body.thread_id).to.equal('T7');
  });

  it('enforce: DNS failing answers 451 (the sender keeps the message); record accepts it', async () => {
    dns.drop('_dmarc.customer.test');
    const bridge = await start();
    const raw = await genuine.sign(
      reply('jane@customer.test', 'secure@helpdesk.test'),
    );
    const refused = await sendRaw({
      port: bridge.smtpPort,
      from: 'jane@customer.test',
      to: ['secure@helpdesk.test'],
      raw,
    });
    expect(refused.code).to.equal(451);
    expect(t.api.requests).to.have.length(0);
    // the same DNS failure under record: accepted, posted, the temperror recorded
    const line = await deliver(
      bridge,
      'support+T5@helpdesk.test',
      raw,
      'jane@customer.test',
    );
    expect(line.outcome).to.equal('delivered');
    expect(line.senderAuth).to.equal('temperror');
    expect(t.api.requests[0]!.body.thread_id).to.equal('T5');
  });

  it('off: the sender is not judged (no DNS query), the thread is kept', async () => {
    const bridge = await start();
    dns.clearQueries();
    const line = await deliver(
      bridge,
      'open+T1@helpdesk.test',
      reply('ceo@bank.test', 'open+T1@helpdesk.test'),
      'ceo@bank.test',
    );
    expect(line).not.to.have.property('senderAuth');
    expect(t.api.requests[0]!.body.thread_id).to.equal('T1');
    expect(dns.queries).to.deep.equal([]);
  });

  it('answers are cached: a second message of the same sender asks DNS nothing new', async () => {
    const bridge = await start();
    const first = await genuine.sign(
      reply('jane@customer.test', 'support@helpdesk.test'),
    );
    await deliver(bridge, 'support@helpdesk.test', first, 'jane@customer.test');
    const asked = dns.queries.length;
    expect(asked).to.be.greaterThan(0);
    const second = await genuine.sign(
      reply('jane@customer.test', 'support@helpdesk.test'),
    );
    await deliver(
      bridge,
      'support@helpdesk.test',
      second,
      'jane@customer.test',
    );
    expect(dns.queries.length).to.equal(asked);
  });

  it('counts verdicts in mailbridge_sender_auth_total', async () => {
    const bridge = await start();
    await deliver(
      bridge,
      'support@helpdesk.test',
      reply('ceo@bank.test', 'support@helpdesk.test'),
      'ceo@bank.test',
    );
    const text = await bridge.daemon.metrics.registry.metrics();
    expect(text).to.match(
      /^mailbridge_sender_auth_total\{verdict="fail"\} 1$/m,
    );
  });

  it('sync mode: enforce refuses, record guards', async () => {
    const bridge = await start({ delivery: { mode: 'sync' } });
    const refused = await sendRaw({
      port: bridge.smtpPort,
      from: 'ceo@bank.test',
      to: ['secure@helpdesk.test'],
      raw: reply('ceo@bank.test', 'secure@helpdesk.test'),
    });
    expect(refused.code).to.equal(550);
    const sent = await sendRaw({
      port: bridge.smtpPort,
      from: 'ceo@bank.test',
      to: ['support+T3@helpdesk.test'],
      raw: reply('ceo@bank.test', 'support+T3@helpdesk.test'),
    });
    expect(sent.code, sent.response).to.equal(250);
    // the one outcome line of sync mode carries the judgement too
    const line = await bridge.waitForLog(l => l.outcome === 'delivered');
    expect(line.senderAuth).to.equal('fail');
    expect(line.authResults).to.match(/^dmarc=fail \(p=reject\)/);
    expect(t.api.requests).to.have.length(1);
    expect(t.api.requests[0]!.body).not.to.have.property('thread_id');
    expect(t.api.requests[0]!.body).not.to.have.property('reply_to_ext_msg_id');
  });

  /** `mailbridge queue held --json` on the bridge's spool. */
  async function heldList(
    bridge: TestBridge,
  ): Promise<Array<Record<string, unknown>>> {
    const listed = await runCli(['queue', 'held', '--json'], {
      MAILBRIDGE_SPOOL_DIR: bridge.spoolDir,
    });
    expect(listed.code, listed.stderr).to.equal(0);
    return JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
  }

  it('enforce: a DMARC quarantine is accepted and held, then replayed by the operator without its thread', async () => {
    const bridge = await start();
    const line = await deliver(
      bridge,
      'secure+T8@helpdesk.test',
      reply('sales@shop.test', 'secure+T8@helpdesk.test'),
      'sales@shop.test',
    );
    expect(line.outcome).to.equal('held');
    expect(line.senderAuth).to.equal('fail');
    expect(line.reason).to.match(
      /sender authentication: dmarc=fail \(p=quarantine\)/,
    );
    expect(t.api.requests).to.have.length(0);
    const [held] = await heldList(bridge);
    expect(held!.id).to.equal(line.queueId);
    expect(held!.reason).to.match(/p=quarantine/);
    const replayed = await runCli(['queue', 'replay', String(line.queueId)], {
      MAILBRIDGE_SPOOL_DIR: bridge.spoolDir,
    });
    expect(replayed.code, replayed.stderr).to.equal(0);
    const posted = await bridge.waitForLog(
      l => l.queueId === line.queueId && l.outcome === 'delivered',
    );
    expect(posted.senderAuth).to.equal('fail');
    const body = t.api.requests[0]!.body;
    expect(body.mailbox_id).to.equal('mb-secure');
    expect(body).not.to.have.property('thread_id');
    expect(body).not.to.have.property('reply_to_ext_msg_id');
  });

  it('sync mode: a quarantine is stored in held/ before the 250, never lost', async () => {
    const bridge = await start({ delivery: { mode: 'sync' } });
    const sent = await sendRaw({
      port: bridge.smtpPort,
      from: 'sales@shop.test',
      to: ['secure@helpdesk.test'],
      raw: reply('sales@shop.test', 'secure@helpdesk.test'),
    });
    expect(sent.code, sent.response).to.equal(250);
    expect(sent.response).to.match(/held as (\S+)/);
    expect(t.api.requests).to.have.length(0);
    const [held] = await heldList(bridge);
    expect(sent.response).to.contain(String(held!.id));
    expect(held!.reason).to.match(/p=quarantine/);
  });

  it('a route that records beside one that enforces: the quarantine holds one, the other is posted guarded', async () => {
    const bridge = await start();
    const sent = await sendRaw({
      port: bridge.smtpPort,
      from: 'sales@shop.test',
      to: ['secure@helpdesk.test', 'support+T4@helpdesk.test'],
      raw: reply('sales@shop.test', 'secure@helpdesk.test'),
    });
    expect(sent.code, sent.response).to.equal(250);
    const id = queueIdOf(sent.response);
    const line = await bridge.waitForLog(
      l => l.queueId === id && typeof l.attempts === 'number',
    );
    expect(line.outcome).to.equal('held');
    expect(t.api.requests).to.have.length(1);
    const body = t.api.requests[0]!.body;
    expect(body.mailbox_id).to.equal('mb-support');
    expect(body).not.to.have.property('thread_id');
    const state = JSON.parse(
      await readFile(join(bridge.spoolDir, 'held', `${id}.json`), 'utf8'),
    ) as QueueEntry;
    expect(state.routes.map(r => [r.recipients, r.status])).to.deep.equal([
      [['secure@helpdesk.test'], 'held'],
      [['support+T4@helpdesk.test'], 'delivered'],
    ]);
  });

  it('api.workerThread false (judged on the main thread): guard, hold and count alike', async () => {
    const bridge = await start({
      api: apiAt(t.api.url, { workerThread: false }),
    });
    const guarded = await deliver(
      bridge,
      'support+T2@helpdesk.test',
      reply('ceo@bank.test', 'support+T2@helpdesk.test'),
      'ceo@bank.test',
    );
    expect(guarded.outcome).to.equal('delivered');
    expect(t.api.requests[0]!.body).not.to.have.property('thread_id');
    const held = await deliver(
      bridge,
      'secure@helpdesk.test',
      reply('sales@shop.test', 'secure@helpdesk.test'),
      'sales@shop.test',
    );
    expect(held.outcome).to.equal('held');
    expect(t.api.requests).to.have.length(1);
    const text = await bridge.daemon.metrics.registry.metrics();
    // the forged sender judged at its attempt, the quarantined one at DATA: once each
    expect(text).to.match(
      /^mailbridge_sender_auth_total\{verdict="fail"\} 2$/m,
    );
  });

  it('behind a PROXY header, SPF judges the client it names, not the proxy', async () => {
    // bank.test's SPF lists 192.0.2.1 only: through a proxy naming that client, its mail passes
    const bridge = await start({ smtp: { proxyProtocol: ['127.0.0.1'] } });
    const socket = connect(bridge.smtpPort, '127.0.0.1');
    socket.setEncoding('utf8');
    let said = '';
    socket.on('data', (chunk: string) => (said += chunk));
    const heard = async (pattern: RegExp) => {
      while (!pattern.test(said)) await once(socket, 'data');
    };
    socket.write('PROXY TCP4 192.0.2.1 192.0.2.25 40000 25\r\n');
    await heard(/^220 /m);
    socket.write(
      'EHLO mail.bank.test\r\nMAIL FROM:<ceo@bank.test>\r\n' +
        'RCPT TO:<support+T6@helpdesk.test>\r\nDATA\r\n',
    );
    await heard(/^354 /m);
    const raw = reply('ceo@bank.test', 'support+T6@helpdesk.test');
    socket.write(`${raw}\r\n.\r\n`);
    await heard(/^250 .*queued as \S+/m);
    const id = queueIdOf(/^250 .*queued as \S+/m.exec(said)![0]);
    socket.end('QUIT\r\n');
    const line = await bridge.waitForLog(
      l => l.queueId === id && typeof l.attempts === 'number',
    );
    expect(line.senderAuth).to.equal('pass');
    expect(line.authResults).to.match(/spf=pass/);
    expect(t.api.requests[0]!.body.thread_id).to.equal('T6');
  });

  /** `count` DKIM-Signature fields naming `domain`'s selector s1 (nothing really signed). */
  function fakeSignatures(domain: string, count: number): string {
    return Array.from(
      { length: count },
      (_, i) =>
        `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=s${i}; h=from:to:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n`,
    ).join('');
  }

  it('a stranger whose own DNS answers too slowly does not buy a thread', async () => {
    // the SPF record of the MAIL FROM domain is answered after 5 s: SPF gives up after one
    // time limit (300 ms) with temperror, and DMARC still concludes: fail
    dns.delay('slow.test', 5000);
    const bridge = await start({
      auth: { dns: { servers: [dns.address], timeoutMs: 300 } },
    });
    const line = await deliver(
      bridge,
      'support+T11@helpdesk.test',
      reply('ceo@bank.test', 'support+T11@helpdesk.test'),
      'x@slow.test',
    );
    expect(line.senderAuth).to.equal('fail');
    expect(line.authResults).to.match(
      /^dmarc=fail \(p=reject\) spf=temperror /,
    );
    const body = t.api.requests[0]!.body;
    expect(body).not.to.have.property('thread_id');
    expect(body).not.to.have.property('reply_to_ext_msg_id');
  });

  it('more signature fields than 16: judged fail at once, no key looked up', async () => {
    const bridge = await start();
    dns.clearQueries();
    const line = await deliver(
      bridge,
      'support+T12@helpdesk.test',
      fakeSignatures('many.test', 17) +
        reply('jane@customer.test', 'support+T12@helpdesk.test'),
      'jane@customer.test',
    );
    expect(line.senderAuth).to.equal('fail');
    expect(line.authResults).to.match(/dkim=policy/);
    expect(dns.queries.filter(q => q.name.endsWith('many.test'))).to.deep.equal(
      [],
    );
    expect(t.api.requests[0]!.body).not.to.have.property('thread_id');
  });

  it('a large message (its own spool file, past 128 KiB): signed and judged from the file', async () => {
    const bridge = await start();
    const big = makeMessage(
      {
        From: 'jane@customer.test',
        To: 'secure+T13@helpdesk.test',
        Subject: 'Re: logs',
        'Message-ID': '<big-1@customer.test>',
        'In-Reply-To': '<thread-42@helpdesk.test>',
      },
      `${'log line 0123456789 abcdefghij\r\n'.repeat(7000)}`,
    );
    const signed = await genuine.sign(big);
    expect(signed.length).to.be.greaterThan(200_000);
    const line = await deliver(
      bridge,
      'secure+T13@helpdesk.test',
      signed,
      'jane@customer.test',
    );
    expect(line.senderAuth).to.equal('pass');
    expect(t.api.requests[0]!.body.thread_id).to.equal('T13');
    // and a large forged one is refused at DATA from its file as well
    const forged = await sendRaw({
      port: bridge.smtpPort,
      from: 'ceo@bank.test',
      to: ['secure@helpdesk.test'],
      raw: big.replace('jane@customer.test', 'ceo@bank.test'),
    });
    expect(forged.code).to.equal(550);
  });
});
