// A client that pipelines QUIT behind the final dot and then closes its sending side (TCP
// half-close, as Exim does) still gets every reply it is owed: the message's, then 221.
import { expect } from 'chai';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, openSession } from '../helpers/smtp-client.js';

// the tests' self-signed certificate for localhost and 127.0.0.1 (fixtures/tls/README.md)
const FIXTURES = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const KEY = join(FIXTURES, 'localhost.key');
const CERT = join(FIXTURES, 'localhost.crt');

const ROUTES = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: 'billing@example.com', mailbox_id: 'mb-billing' },
];

/** The reply lines (final lines only) in `text`. */
function replyLines(text: string): string[] {
  return text.match(/^\d{3} .*$/gm) ?? [];
}

describe('a client that half-closes after the dot (smtp-server with allowHalfOpen)', () => {
  const t = useBridge();

  function start(
    mode: 'queue' | 'sync' | 'hybrid',
    smtp: {
      lmtp?: boolean;
      tls?: { key: string; cert: string; implicit: boolean };
    } = {},
  ) {
    return t.start({
      api: apiAt(t.api.url),
      delivery: { mode },
      routes: ROUTES,
      smtp,
    });
  }

  /**
   * A session over TLS, implicit or after STARTTLS on a plain session, past the greeting (or
   * the 220 of STARTTLS): its socket and what it has read over TLS.
   */
  async function openTlsSession(tls: 'implicit' | 'starttls'): Promise<{
    socket: Socket;
    text: () => string;
  }> {
    const options = { ca: [readFileSync(CERT)], servername: 'localhost' };
    let socket;
    if (tls === 'starttls') {
      const plain = await openSession(t.bridge.smtpPort);
      plain.socket.write('EHLO client.example.net\r\nSTARTTLS\r\n');
      await plain.waitFor(/^220 2\.0\.0 /m);
      plain.socket.removeAllListeners('data');
      socket = tlsConnect({ socket: plain.socket, ...options });
      await once(socket, 'secureConnect');
    } else {
      socket = tlsConnect({
        port: t.bridge.smtpPort,
        host: '127.0.0.1',
        ...options,
      });
    }
    socket.setEncoding('utf8');
    let text = '';
    socket.on('data', (chunk: string) => (text += chunk));
    // no greeting over TLS after STARTTLS
    while (tls === 'implicit' && !/^220 /m.test(text)) {
      await once(socket, 'data');
    }
    return { socket, text: () => text };
  }

  /**
   * After the greeting: the whole transaction, the message and `tail` (QUIT, or nothing) in one
   * write, then the client's FIN. Resolves with every reply line once the server has closed.
   */
  async function halfClose(
    options: {
      lmtp?: boolean;
      tls?: 'implicit' | 'starttls';
      rcpts?: string[];
      tail?: string;
    } = {},
  ): Promise<string[]> {
    const rcpts = options.rcpts ?? ['support@example.com'];
    const session = options.tls
      ? await openTlsSession(options.tls)
      : await openSession(t.bridge.smtpPort).then(s => ({
          socket: s.socket,
          text: () => s.replies(),
        }));
    const { socket } = session;
    const closed = once(socket, 'close');
    socket.end(
      `${options.lmtp ? 'LHLO' : 'EHLO'} client.example.net\r\n` +
        'MAIL FROM:<jane@example.net>\r\n' +
        rcpts.map(r => `RCPT TO:<${r}>\r\n`).join('') +
        'DATA\r\n' +
        makeMessage({
          From: 'jane@example.net',
          To: rcpts.join(', '),
          Subject: 'half-close',
          'Message-ID': '<half-close@example.net>',
        }) +
        '.\r\n' +
        (options.tail ?? 'QUIT\r\n'),
    );
    await closed;
    return replyLines(session.text());
  }

  /** The replies after the 354: what the message was answered, and the rest. */
  function afterData(lines: string[]): string[] {
    expect(lines.filter(l => l.startsWith('354 '))).to.have.length(1);
    return lines.slice(lines.findIndex(l => l.startsWith('354 ')) + 1);
  }

  it('queue mode: "250 ... queued as", then 221; posted once', async () => {
    await start('queue');
    const lines = afterData(await halfClose());
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^250 2\.6\.0 .*queued as /);
    expect(lines[1]).to.match(/^221 /);
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    expect(t.api.requests).to.have.length(1);
    expect(t.api.requests[0]?.body.ext_msg_id).to.equal(
      '<half-close@example.net>',
    );
  });

  it('sync mode: the API\'s answer as "250 ... delivered", then 221; posted once', async () => {
    await start('sync');
    const lines = afterData(await halfClose());
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^250 2\.6\.0 /);
    expect(lines[1]).to.match(/^221 /);
    expect(t.api.requests).to.have.length(1);
  });

  it('sync mode, the API refuses: 554 5.6.0, then 221', async () => {
    await start('sync');
    t.api.setDefault({ status: 422, body: { errors: [] } });
    const lines = afterData(await halfClose());
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^554 5\.6\.0 /);
    expect(lines[1]).to.match(/^221 /);
    expect(t.api.requests).to.have.length(1);
  });

  it('hybrid mode: "250 ... delivered as", then 221; posted once', async () => {
    await start('hybrid');
    const lines = afterData(await halfClose());
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^250 2\.6\.0 .*delivered as /);
    expect(lines[1]).to.match(/^221 /);
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    expect(t.api.requests).to.have.length(1);
  });

  it('LMTP: one reply per recipient after the dot, then 221; one post per route', async () => {
    await start('sync', { lmtp: true });
    const lines = afterData(
      await halfClose({
        lmtp: true,
        rcpts: ['support@example.com', 'billing@example.com'],
      }),
    );
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(/^250 /);
    expect(lines[1]).to.match(/^250 /);
    expect(lines[2]).to.match(/^221 /);
    expect(t.api.requests.map(r => r.body.mailbox_id).sort()).to.deep.equal([
      'mb-billing',
      'mb-support',
    ]);
  });

  it('over implicit TLS: "250 ... queued as", then 221; posted once', async () => {
    await start('queue', { tls: { key: KEY, cert: CERT, implicit: true } });
    const lines = afterData(await halfClose({ tls: 'implicit' }));
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^250 2\.6\.0 .*queued as /);
    expect(lines[1]).to.match(/^221 /);
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    expect(t.api.requests).to.have.length(1);
  });

  it('after STARTTLS: "250 ... queued as", then 221; posted once', async () => {
    await start('queue', { tls: { key: KEY, cert: CERT, implicit: false } });
    const lines = afterData(await halfClose({ tls: 'starttls' }));
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^250 2\.6\.0 .*queued as /);
    expect(lines[1]).to.match(/^221 /);
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    expect(t.api.requests).to.have.length(1);
  });

  it('no QUIT: the message is answered, then the server closes', async () => {
    await start('queue');
    const lines = afterData(await halfClose({ tail: '' }));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^250 2\.6\.0 .*queued as /);
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    expect(t.api.requests).to.have.length(1);
  });
});
