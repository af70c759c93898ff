// The edges of LMTP's replies: a recipient given twice (one reply per accepted RCPT, RFC 2033
// 4.2), routes failing differently in sync mode, hybrid's partial refusal, and dry-run leaving
// no dedupe records behind (regression tests from a review).
import { expect } from 'chai';
import { apiAt, startBridge, type TestBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import {
  makeMessage,
  openSession,
  sendRaw,
  type RawSession,
} from '../helpers/smtp-client.js';

const ROUTES = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: 'billing@example.com', mailbox_id: 'mb-billing' },
];

/** The final reply lines the session got since its last clear(). */
function replyLines(session: RawSession): string[] {
  return session.replies().match(/^\d{3} .*$/gm) ?? [];
}

/**
 * One LMTP transaction to `rcpts`, then a NOOP pipelined behind the message: resolves with the
 * replies that came after the final dot and before the NOOP's own `250 2.0.0 OK`.
 */
async function lmtpSend(
  session: RawSession,
  rcpts: string[],
  subject: string,
): Promise<string[]> {
  session.socket.write(
    'MAIL FROM:<jane@example.net>\r\n' +
      rcpts.map(r => `RCPT TO:<${r}>\r\n`).join('') +
      'DATA\r\n',
  );
  await session.waitFor(/^354 /m);
  const beforeData = replyLines(session);
  // every RCPT was accepted: the client is owed one reply per RCPT after the dot
  expect(beforeData.filter(l => l.startsWith('250 '))).to.have.length(
    1 + rcpts.length,
  );
  session.clear();
  session.socket.write(
    `${makeMessage({ From: 'jane@example.net', Subject: subject })}.\r\nNOOP\r\n`,
  );
  await session.waitFor(/^250 2\.0\.0 OK\r\n/m);
  const lines = replyLines(session);
  session.clear();
  return lines.slice(0, lines.lastIndexOf('250 2.0.0 OK'));
}

describe('LMTP edges', () => {
  let api: FakeApi;
  let bridge: TestBridge | undefined;
  const sessions: RawSession[] = [];

  beforeEach(async () => {
    api = await startFakeApi();
  });
  afterEach(async () => {
    for (const session of sessions.splice(0)) session.socket.destroy();
    await bridge?.close();
    bridge = undefined;
    await api.close();
  });

  async function start(mode: 'queue' | 'sync' | 'hybrid'): Promise<number> {
    bridge = await startBridge({
      delivery: { mode },
      api: apiAt(api.url),
      routes: ROUTES,
      smtp: { lmtp: true },
    });
    return bridge.smtpPort;
  }

  async function lhlo(port: number): Promise<RawSession> {
    const session = await openSession(port);
    sessions.push(session);
    session.socket.write('LHLO client.example.net\r\n');
    await session.waitFor(/^250 /m);
    session.clear();
    return session;
  }

  for (const mode of ['sync', 'queue'] as const) {
    it(`${mode} mode: a recipient given twice (other case) gets one reply per accepted RCPT (RFC 2033 4.2)`, async () => {
      const port = await start(mode);
      const session = await lhlo(port);
      const replies = await lmtpSend(
        session,
        ['support@example.com', 'Support@Example.com'],
        `twice ${mode}`,
      );
      // two RCPTs answered 250, so two replies are owed after the dot; the client otherwise
      // waits for the second until it times out, or takes the next command's reply for it
      expect(replies).to.have.length(2);
    });
  }

  it('sync mode: a recipient given twice among others: replies line up with the RCPTs', async () => {
    const port = await start('sync');
    const session = await lhlo(port);
    // support's route fails for now, billing's goes through
    api.respondWith(r =>
      r.body.mailbox_id === 'mb-support' ? { status: 503 } : { status: 204 },
    );
    const replies = await lmtpSend(
      session,
      ['support@example.com', 'billing@example.com', 'SUPPORT@example.com'],
      'misaligned',
    );
    expect(replies).to.have.length(3);
    expect(replies[0]).to.match(/^451 /);
    expect(replies[1]).to.match(/^250 /);
    expect(replies[2]).to.match(/^451 /);
  });

  it('sync mode, every route failed, one for now and one for good: each recipient hears its own', async () => {
    const port = await start('sync');
    const session = await lhlo(port);
    api.respondWith(r =>
      r.body.mailbox_id === 'mb-support'
        ? { status: 503 }
        : { status: 422, body: { errors: [] } },
    );
    const replies = await lmtpSend(
      session,
      ['support@example.com', 'billing@example.com'],
      'both failed',
    );
    expect(replies[0]).to.equal(
      '451 4.3.0 Temporary failure, please try again later',
    );
    // README: "every recipient gets the same refusal" (451): billing, refused for good, is
    // then retried by the client for days; with LMTP it could hear 554 now
    expect(replies[1]).to.equal(
      '554 5.6.0 Message rejected by the destination',
    );
  });

  it('hybrid mode: a route refused for good next to one delivered: 250 for all, the refusal in dead/ (README)', async () => {
    // hybrid answers for the stored message: the sender hears 554 only when no route took it
    const port = await start('hybrid');
    const session = await lhlo(port);
    api.respondWith(r =>
      r.body.mailbox_id === 'mb-billing'
        ? { status: 422, body: { errors: [] } }
        : { status: 204 },
    );
    const replies = await lmtpSend(
      session,
      ['support@example.com', 'billing@example.com'],
      'hybrid partial refusal',
    );
    expect(replies).to.have.length(2);
    for (const reply of replies) {
      expect(reply).to.match(/^250 2\.6\.0 OK: queued as /);
    }
    const dead = await bridge!.waitForLog(l => l.message === 'message dead');
    expect(String(dead.reason)).to.match(/^refused: /);
  });

  it('sync mode: a message written to dry-run is posted once a token is configured', async () => {
    // first run: no token, dry-run
    bridge = await startBridge(
      { delivery: { mode: 'sync' }, routes: ROUTES },
      { keepSpool: true },
    );
    const spoolDir = bridge.spoolDir;
    expect(bridge.daemon.dryRun).to.equal(true);
    const raw = makeMessage({
      From: 'jane@example.net',
      Subject: 'tried in dry-run',
      'Message-ID': '<dry-run-then-real@example.net>',
    });
    const first = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw,
    });
    expect(first.code).to.equal(250);
    await bridge.close();
    // second run on the same spool, now with the API: the sender resends the message
    bridge = await startBridge(
      { delivery: { mode: 'sync' }, api: apiAt(api.url), routes: ROUTES },
      { spoolDir },
    );
    const second = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw,
    });
    expect(second.code).to.equal(250);
    // nothing was ever delivered to mb-support, yet the dry-run's dedupe record skips it
    expect(api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-support',
    ]);
  });
});
