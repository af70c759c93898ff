// SMTP limits of the running daemon: message size (SIZE), recipients per message, clients at once.
import { expect } from 'chai';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, smtpDialog } from '../helpers/smtp-client.js';

const MAX_SIZE = 2000;

/** The value of a counter's series with this label. */
async function count(
  metric: {
    get(): Promise<{ values: Array<{ labels: object; value: number }> }>;
  },
  label: Record<string, string>,
): Promise<number | undefined> {
  const [[name, value]] = Object.entries(label) as [[string, string]];
  return (await metric.get()).values.find(
    v => (v.labels as Record<string, unknown>)[name] === value,
  )?.value;
}

/** Opens an SMTP connection and resolves once its greeting arrived; the caller ends it. */
async function openSession(port: number): Promise<{
  socket: Socket;
  greeting: string;
}> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let text = '';
  while (!text.includes('\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [string];
    text += chunk;
  }
  return { socket, greeting: text.trim() };
}

describe('limits', () => {
  const sockets: Socket[] = [];
  const t = useBridge({
    beforeClose: () => {
      for (const socket of sockets.splice(0)) socket.destroy();
    },
  });

  async function start(smtp: Record<string, number>): Promise<void> {
    await t.start({
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url),
      smtp,
    });
  }

  it('advertises SIZE with smtp.maxMessageSize in the EHLO reply', async () => {
    await start({ maxMessageSize: MAX_SIZE });
    const [greeting, ehlo] = await smtpDialog(t.bridge.smtpPort, [
      'EHLO client.example.net',
      'QUIT',
    ]);
    expect(greeting).to.match(/^220 \S+ ESMTP mailbridge$/);
    // the SIZE line may be anywhere in the multi-line reply, the last one included
    expect(ehlo).to.match(new RegExp(`^250[ -]SIZE ${MAX_SIZE}$`, 'm'));
  });

  it('refuses MAIL FROM with a SIZE= over the limit with 552 5.3.4', async () => {
    await start({ maxMessageSize: MAX_SIZE });
    const replies = await smtpDialog(t.bridge.smtpPort, [
      'EHLO client.example.net',
      `MAIL FROM:<jane@example.net> SIZE=${MAX_SIZE + 1}`,
      `MAIL FROM:<jane@example.net> SIZE=${MAX_SIZE}`,
      'QUIT',
    ]);
    expect(replies[2]).to.match(/^552 5\.3\.4 /);
    expect(replies[3]).to.match(/^250 /);
    // smtp-server answers it itself: counted and logged all the same
    const { metrics } = t.bridge.daemon;
    expect(await count(metrics.mailRefused, { reason: 'size' })).to.equal(1);
    const line = await t.bridge.waitForLog(l => l.code === 552);
    expect(line).to.include({
      level: 'info',
      size: MAX_SIZE + 1,
      maxMessageSize: MAX_SIZE,
    });
  });

  it('refuses an oversize message without SIZE= at the end of DATA with 552 5.3.4 and posts nothing', async () => {
    await start({ maxMessageSize: MAX_SIZE });
    const raw = makeMessage(
      { From: 'jane@example.net', To: 'support@example.com', Subject: 'big' },
      `${'x'.repeat(70)}\r\n`.repeat(60),
    );
    expect(raw.length).to.be.greaterThan(MAX_SIZE);
    const replies = await smtpDialog(t.bridge.smtpPort, [
      'EHLO client.example.net',
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<support@example.com>',
      'DATA',
      `${raw}\r\n.\r\n`,
      // the session goes on: a small message right after is accepted
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<support@example.com>',
      'DATA',
      `${makeMessage({ From: 'jane@example.net', Subject: 'small' })}\r\n.\r\n`,
      'QUIT',
    ]);
    expect(replies[4]).to.match(/^354 /);
    expect(replies[5]).to.match(/^552 5\.3\.4 /);
    expect(replies[9]).to.match(/^250 /);
    expect(t.api.requests).to.have.length(1);
    expect(t.api.requests[0]?.body.subject).to.equal('small');
    // a 552 after DATA is not one at MAIL FROM
    const { mailRefused } = t.bridge.daemon.metrics;
    expect(await count(mailRefused, { reason: 'size' })).to.equal(0);
  });

  it('answers 452 4.5.3 to the recipient past smtp.maxRecipients', async () => {
    await start({ maxRecipients: 2 });
    const replies = await smtpDialog(t.bridge.smtpPort, [
      'EHLO client.example.net',
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<a@example.com>',
      'RCPT TO:<b@example.com>',
      'RCPT TO:<c@example.com>',
      'DATA',
      `${makeMessage({ From: 'jane@example.net', To: 'a@example.com' })}\r\n.\r\n`,
      'QUIT',
    ]);
    expect(replies[3]).to.match(/^250 /);
    expect(replies[4]).to.match(/^250 /);
    expect(replies[5]).to.match(/^452 4\.5\.3 /);
    expect(replies[7]).to.match(/^250 /);
    expect(t.api.requests).to.have.length(1);
    expect(t.api.requests[0]?.body.bcc).to.equal('b@example.com');
    const { rcptRefused } = t.bridge.daemon.metrics;
    expect(await count(rcptRefused, { reason: 'too_many' })).to.equal(1);
  });

  it('answers 421 to a client past smtp.maxClients', async () => {
    await start({ maxClients: 1 });
    const held = await openSession(t.bridge.smtpPort);
    sockets.push(held.socket);
    expect(held.greeting).to.match(/^220 /);
    const [refused] = await smtpDialog(t.bridge.smtpPort, []);
    expect(refused).to.match(/^421 /);
    // once the first client leaves, a new one is served again
    held.socket.end();
    // the server forgets a connection when it logs its "close" event: wait for both
    const closed = (l: Record<string, unknown>) =>
      /received "close" event/.test(String(l.message));
    await t.bridge.waitForLog(() => t.bridge.logs.filter(closed).length >= 2);
    const [greeting] = await smtpDialog(t.bridge.smtpPort, ['QUIT']);
    expect(greeting).to.match(/^220 /);
  });
});
