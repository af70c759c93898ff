// Who may open a session on the running daemon: allowed client networks (554 5.7.1), sessions
// per client at once and per minute (421 4.7.0), and the client address a PROXY header gives.
import { expect } from 'chai';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import {
  makeMessage,
  openSession,
  sendRaw,
  smtpDialog,
  type RawSession,
} from '../helpers/smtp-client.js';

/** The first reply line of a connection that first sends `prelude` (a PROXY header). */
async function firstReply(
  port: number,
  prelude = '',
): Promise<{ socket: Socket; reply: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  if (prelude) socket.write(prelude);
  let text = '';
  while (!text.includes('\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [string];
    text += chunk;
  }
  return { socket, reply: text.trim() };
}

/** What `mailbridge_sessions_refused_total` counted, by reason. */
async function refusedCounts(
  bridge: TestBridge,
): Promise<Record<string, number>> {
  const { values } = await bridge.daemon.metrics.refusedSessions.get();
  // every reason is shown from the start, at 0: those that counted
  return Object.fromEntries(
    values.filter(v => v.value).map(v => [String(v.labels.reason), v.value]),
  );
}

describe('client access', () => {
  const sessions: RawSession[] = [];
  const sockets: Socket[] = [];
  let now = 0;
  const t = useBridge({
    beforeClose: () => {
      for (const session of sessions.splice(0)) session.socket.destroy();
      for (const socket of sockets.splice(0)) socket.destroy();
    },
  });

  beforeEach(() => {
    now = Date.now();
  });

  async function start(
    smtp: Record<string, number | boolean | string[]>,
  ): Promise<TestBridge> {
    return t.start(
      { delivery: { mode: 'sync' }, api: apiAt(t.api.url), smtp },
      { daemon: { now: () => now } },
    );
  }

  it('refuses a client outside smtp.allowedNetworks with 554 5.7.1 at once', async () => {
    const { smtpPort } = await start({
      allowedNetworks: ['10.0.0.0/8', '::1'],
    });
    const replies = await smtpDialog(smtpPort, []);
    expect(replies).to.deep.equal([
      '554 5.7.1 Access denied: 127.0.0.1 is not in the allowed networks',
    ]);
    // nothing gets through: nodemailer hears the same refusal
    const sent = await sendRaw({
      port: smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'refused' }),
    });
    expect(sent.code).to.equal(554);
    expect(t.api.requests).to.have.length(0);
    expect(await refusedCounts(t.bridge)).to.deep.equal({ network: 2 });
    const logged = await t.bridge.waitForLog(
      l => l.message === 'session refused',
    );
    expect(logged).to.include({
      remoteAddress: '127.0.0.1',
      reason: 'network',
      code: 554,
    });
  });

  it('serves a client inside smtp.allowedNetworks', async () => {
    const { smtpPort } = await start({ allowedNetworks: ['127.0.0.0/8'] });
    const sent = await sendRaw({
      port: smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'allowed' }),
    });
    expect(sent.code).to.equal(250);
    expect(t.api.requests[0]?.body.subject).to.equal('allowed');
  });

  it('refuses a session past smtp.maxConnectionsPerClient with 421 4.7.0, until one closes', async () => {
    const { smtpPort } = await start({ maxConnectionsPerClient: 2 });
    sessions.push(await openSession(smtpPort), await openSession(smtpPort));
    const [refused] = await smtpDialog(smtpPort, []);
    expect(refused).to.equal(
      '421 4.7.0 Too many connections from 127.0.0.1, try again later',
    );
    expect(await refusedCounts(t.bridge)).to.deep.equal({ connections: 1 });
    // the refused session gave nothing back: still two open, still full
    const [again] = await smtpDialog(smtpPort, []);
    expect(again).to.match(/^421 4\.7\.0 /);
    // one leaves: its place is free once the server has seen it go
    sessions.shift()!.socket.end('QUIT\r\n');
    await t.bridge.waitForLog(l => l.message === 'session closed');
    const [served] = await smtpDialog(smtpPort, ['QUIT']);
    expect(served).to.match(/^220 /);
  });

  it('refuses past smtp.connectionRatePerClient sessions a minute with 421 4.7.0', async () => {
    const { smtpPort } = await start({ connectionRatePerClient: 2 });
    for (let i = 0; i < 2; i++) {
      const [greeting] = await smtpDialog(smtpPort, ['QUIT']);
      expect(greeting).to.match(/^220 /);
    }
    const [refused] = await smtpDialog(smtpPort, []);
    expect(refused).to.equal(
      '421 4.7.0 Too many connections from 127.0.0.1 in the last minute, try again later',
    );
    expect(await refusedCounts(t.bridge)).to.deep.equal({ rate: 1 });
    // a minute after the first, one more may start
    now += 60_000;
    const [greeting] = await smtpDialog(smtpPort, ['QUIT']);
    expect(greeting).to.match(/^220 /);
  });

  it('checks and logs the client address of a PROXY header (smtp.proxyProtocol)', async () => {
    const { smtpPort } = await start({
      proxyProtocol: ['127.0.0.1'],
      allowedNetworks: ['10.0.0.0/8'],
    });
    // a client of an allowed network, behind the proxy: served
    const allowed = await firstReply(
      smtpPort,
      'PROXY TCP4 10.1.2.3 192.0.2.25 40000 25\r\n',
    );
    sockets.push(allowed.socket);
    expect(allowed.reply).to.match(/^220 /);
    allowed.socket.write(
      'EHLO client.example.net\r\nMAIL FROM:<jane@example.net>\r\n' +
        'RCPT TO:<support@example.com>\r\nDATA\r\n',
    );
    let text = '';
    while (!/^354 /m.test(text)) {
      text += ((await once(allowed.socket, 'data')) as [string])[0];
    }
    allowed.socket.write(
      makeMessage({ From: 'jane@example.net', Subject: 'proxied' }) + '.\r\n',
    );
    while (!/^250 .*(queued|delivered)/m.test(text)) {
      text += ((await once(allowed.socket, 'data')) as [string])[0];
    }
    expect(t.api.requests[0]?.body.subject).to.equal('proxied');
    const accepted = await t.bridge.waitForLog(
      l =>
        typeof l.message === 'string' &&
        l.message.startsWith('message ') &&
        l.code === 250,
    );
    expect(accepted.remoteAddress).to.equal('10.1.2.3');
    // one outside it, behind the same proxy: refused on its own address, not the proxy's
    const refused = await firstReply(
      smtpPort,
      'PROXY TCP4 203.0.113.9 192.0.2.25 40001 25\r\n',
    );
    sockets.push(refused.socket);
    expect(refused.reply).to.equal(
      '554 5.7.1 Access denied: 203.0.113.9 is not in the allowed networks',
    );
  });
});
