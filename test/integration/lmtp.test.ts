// LMTP on the running daemon (smtp.lmtp): LHLO instead of EHLO, and one reply per accepted RCPT
// after the message, in queue, sync and hybrid mode: a recipient given twice (RFC 2033 4.2),
// routes failing differently, hybrid's partial refusal, a message over the size limit.
import { expect } from 'chai';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { listSpool, queueIdOf } from '../helpers/queue-tools.js';
import {
  makeMessage,
  openSession,
  smtpDialog,
  type RawSession,
} from '../helpers/smtp-client.js';

const ROUTES = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: 'billing@example.com', mailbox_id: 'mb-billing' },
];

const EMPTY_SPOOL = { tmp: [], msg: [], queue: [], active: [], dead: [] };

/** The reply lines (final lines only) the session got since its last clear(). */
function replyLines(session: RawSession): string[] {
  return session.replies().match(/^\d{3} .*$/gm) ?? [];
}

/** Sends one message to both routes over LMTP; resolves with the replies after the dot. */
async function sendToBoth(
  session: RawSession,
  subject: string,
): Promise<string[]> {
  session.socket.write(
    'MAIL FROM:<jane@example.net>\r\n' +
      'RCPT TO:<support@example.com>\r\nRCPT TO:<billing@example.com>\r\nDATA\r\n',
  );
  await session.waitFor(/^354 /m);
  session.clear();
  session.socket.write(
    `${makeMessage({ From: 'jane@example.net', Subject: subject })}.\r\n`,
  );
  while (replyLines(session).length < 2) await session.waitFor(/\r\n$/);
  const replies = replyLines(session);
  session.clear();
  return replies;
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

describe('LMTP', () => {
  const sessions: RawSession[] = [];
  const t = useBridge({
    beforeClose: () => {
      for (const session of sessions.splice(0)) session.socket.destroy();
    },
  });

  async function start(
    mode: 'queue' | 'sync' | 'hybrid',
    smtp: { maxMessageSize?: number } = {},
  ): Promise<number> {
    const bridge = await t.start({
      // retries come soon, for the tests that wait for one
      delivery: {
        mode,
        scanIntervalMs: 100,
        retry: { initialDelayMs: 20, maxDelayMs: 200 },
      },
      api: apiAt(t.api.url),
      routes: ROUTES,
      smtp: { lmtp: true, ...smtp },
    });
    return bridge.smtpPort;
  }

  /** The API refuses billing's route for good, and support's once for now, then takes it. */
  function refuseBillingDelaySupport(): void {
    let supportTries = 0;
    t.api.respondWith(r => {
      if (r.body.mailbox_id === 'mb-billing') {
        return { status: 422, body: { errors: [] } };
      }
      return ++supportTries === 1 ? { status: 503 } : { status: 204 };
    });
  }

  /**
   * The API was asked for these mailboxes (in any order), nothing went to dead/ (a refusal the
   * sender heard is not kept) and nothing is left in the spool.
   */
  async function expectPostedNothingLeft(mailboxes: string[]): Promise<void> {
    expect(t.api.requests.map(r => r.body.mailbox_id).sort()).to.deep.equal(
      mailboxes,
    );
    expect(await listSpool(t.bridge.spoolDir)).to.deep.equal(EMPTY_SPOOL);
    expect(
      t.bridge.logs.filter(l => l.message === 'message dead'),
    ).to.deep.equal([]);
  }

  async function lhlo(port: number): Promise<RawSession> {
    const session = await openSession(port);
    sessions.push(session);
    session.socket.write('LHLO client.example.net\r\n');
    await session.waitFor(/^250 /m);
    session.clear();
    return session;
  }

  it('greets as LMTP, answers LHLO and refuses EHLO', async () => {
    const port = await start('queue');
    const [greeting, ehlo, lhloReply] = await smtpDialog(port, [
      'EHLO client.example.net',
      'LHLO client.example.net',
      'QUIT',
    ]);
    expect(greeting).to.match(/^220 \S+ LMTP mailbridge$/);
    expect(ehlo).to.match(/^500 /);
    expect(lhloReply).to.match(/^250[ -]/);
  });

  it('queue mode: one reply per recipient, the message stored once and posted per route', async () => {
    const port = await start('queue');
    const session = await lhlo(port);
    const replies = await sendToBoth(session, 'two routes');
    expect(replies).to.have.length(2);
    expect(replies[0]).to.match(/^250 2\.6\.0 OK: queued as [0-9A-Z]+$/);
    // the same message for both: the same queue id
    expect(replies[1]).to.equal(replies[0]);
    await t.bridge.waitForLog(
      l => l.message === 'message delivered' && l.outcome === 'delivered',
    );
    expect(t.api.requests.map(r => r.body.mailbox_id).sort()).to.deep.equal([
      'mb-billing',
      'mb-support',
    ]);
  });

  it('sync mode: each recipient hears its own route; the client retries only the failed one', async () => {
    const port = await start('sync');
    const session = await lhlo(port);
    // the first route's post fails for now, the second goes through
    t.api.reply({ status: 503 }, { status: 204 });
    const replies = await sendToBoth(session, 'half through');
    expect(replies).to.have.length(2);
    expect(replies[0]).to.equal(
      '451 4.3.0 Temporary failure, please try again later',
    );
    expect(replies[1]).to.match(/^250 2\.6\.0 OK: delivered as [0-9A-Z]+$/);
    const partial = await t.bridge.waitForLog(
      l => l.message === 'message partly delivered',
    );
    expect(partial).to.include({
      outcome: 'partial',
      refusedRecipients: 1,
      level: 'warn',
    });
    // the client sends it again to the recipient that failed only
    session.socket.write(
      'MAIL FROM:<jane@example.net>\r\nRCPT TO:<support@example.com>\r\nDATA\r\n',
    );
    await session.waitFor(/^354 /m);
    session.clear();
    session.socket.write(
      `${makeMessage({ From: 'jane@example.net', Subject: 'half through' })}.\r\n`,
    );
    await session.waitFor(/^250 2\.6\.0 OK: delivered as /m);
    expect(t.api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-support',
      'mb-billing',
      'mb-support',
    ]);
    const { values } = await t.bridge.daemon.metrics.messages.get();
    expect(
      Object.fromEntries(
        values.filter(v => v.value).map(v => [v.labels.outcome, v.value]),
      ),
    ).to.deep.equal({ partial: 1, accepted: 1 });
  });

  it('sync mode: a route the API refuses answers 554 to its recipients, 250 to the others', async () => {
    const port = await start('sync');
    const session = await lhlo(port);
    t.api.reply({ status: 204 }, { status: 422, body: { errors: [] } });
    const replies = await sendToBoth(session, 'one refused');
    expect(replies[0]).to.match(/^250 2\.6\.0 OK: delivered as /);
    expect(replies[1]).to.equal(
      '554 5.6.0 Message rejected by the destination',
    );
  });

  it('sync mode: a temporary API failure answers 451 4.3.0 for every recipient, then 250s', async () => {
    const port = await start('sync');
    const session = await lhlo(port);
    t.api.reply({ status: 503 }, { status: 503 });
    const deferred = await sendToBoth(session, 'retry me');
    expect(deferred).to.have.length(2);
    for (const reply of deferred) expect(reply).to.match(/^451 4\.3\.0 /);
    // the client sends it again: both routes go through
    const accepted = await sendToBoth(session, 'retry me');
    expect(accepted).to.have.length(2);
    for (const reply of accepted) {
      expect(reply).to.match(/^250 2\.6\.0 OK: delivered as [0-9A-Z]+$/);
    }
    // each route: refused once, then posted
    expect(t.api.requests.map(r => r.body.mailbox_id).sort()).to.deep.equal([
      'mb-billing',
      'mb-billing',
      'mb-support',
      'mb-support',
    ]);
  });

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
    t.api.respondWith(r =>
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
    t.api.respondWith(r =>
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

  it('hybrid mode: a route refused for good next to one delivered: 554 to its recipients, 250 delivered to the others, nothing in dead/', async () => {
    const port = await start('hybrid');
    const session = await lhlo(port);
    t.api.respondWith(r =>
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
    expect(replies[0]).to.match(/^250 2\.6\.0 OK: delivered as [0-9A-Z]+$/);
    expect(replies[1]).to.equal(
      '554 5.6.0 Message rejected by the destination',
    );
    const id = queueIdOf(replies[0]!);
    const partial = await t.bridge.waitForLog(
      l => l.stage === 'smtp' && l.outcome === 'partial',
    );
    expect(partial).to.include({
      message: 'message partly delivered',
      queueId: id,
      refusedRecipients: 1,
    });
    const refused = await t.bridge.daemon.metrics.registry
      .getSingleMetric('mailbridge_recipients_refused_total')!
      .get();
    const counted = refused.values.filter(v => v.value);
    expect(counted.map(v => [v.labels.result, v.value])).to.deep.equal([
      ['permanent', 1],
    ]);
    await expectPostedNothingLeft(['mb-billing', 'mb-support']);
  });

  it('hybrid mode: a route refused for good next to one failing for now: 554 to its recipients, 250 queued to the others, retried without it', async () => {
    const port = await start('hybrid');
    const session = await lhlo(port);
    refuseBillingDelaySupport();
    const replies = await lmtpSend(
      session,
      ['billing@example.com', 'support@example.com'],
      'hybrid refusal and retry',
    );
    expect(replies[0]).to.equal(
      '554 5.6.0 Message rejected by the destination',
    );
    expect(replies[1]).to.match(/^250 2\.6\.0 OK: queued as [0-9A-Z]+$/);
    const id = queueIdOf(replies[1]!);
    await t.bridge.waitForLog(
      l => l.message === 'message delivered' && l.queueId === id,
    );
    // billing posted once (refused), support twice (503, then 204)
    await expectPostedNothingLeft(['mb-billing', 'mb-support', 'mb-support']);
  });

  it('hybrid mode: the split attempt cannot be filed: the refusal stands, the queue finishes the rest', async () => {
    const port = await start('hybrid');
    const session = await lhlo(port);
    refuseBillingDelaySupport();
    // support must wait in queue/, which is broken
    const queue = join(t.bridge.spoolDir, 'queue');
    await rm(queue, { recursive: true });
    await writeFile(queue, 'not a folder');
    const replies = await lmtpSend(
      session,
      ['support@example.com', 'billing@example.com'],
      'hybrid split, disk trouble',
    );
    expect(replies[0]).to.match(/^250 2\.6\.0 OK: queued as [0-9A-Z]+$/);
    expect(replies[1]).to.equal(
      '554 5.6.0 Message rejected by the destination',
    );
    const id = queueIdOf(replies[0]!);
    const failed = await t.bridge.waitForLog(
      l => l.message === 'hybrid attempt failed' && l.queueId === id,
    );
    expect(failed.code).to.equal('ENOTDIR');

    await rm(queue);
    await mkdir(queue);
    await t.bridge.waitForLog(
      l => l.message === 'message delivered' && l.queueId === id,
    );
    // billing was not posted again: the state handed to the queue is the one without it
    await expectPostedNothingLeft(['mb-billing', 'mb-support', 'mb-support']);
  });

  it('gets one 552 per accepted RCPT command, not one per envelope entry', async () => {
    const port = await start('queue', { maxMessageSize: 1000 });
    const session = await openSession(port);
    sessions.push(session);
    session.socket.write(
      'LHLO client.example.net\r\nMAIL FROM:<jane@example.net>\r\n' +
        'RCPT TO:<support@example.com>\r\nRCPT TO:<SUPPORT@example.com>\r\nDATA\r\n',
    );
    await session.waitFor(/^354 /m);
    // MAIL and two RCPTs answered 250
    expect(
      session.replies().match(/^250 \d\.\d\.\d Accepted\r?$/gm),
    ).to.have.length(3);
    session.clear();
    const big = makeMessage(
      { From: 'jane@example.net', Subject: 'too big' },
      ('y'.repeat(70) + '\r\n').repeat(40),
    );
    session.socket.write(`${big}.\r\nNOOP\r\n`);
    await session.waitFor(/^250 2\.0\.0 OK\r\n/m);
    const lines: string[] = session.replies().match(/^\d{3} .*$/gm) ?? [];
    // two replies owed after the dot, before the NOOP's; with one, an LMTP client takes the
    // NOOP's 250 for the second recipient's (or waits for it until it times out)
    const owed = lines.slice(0, lines.lastIndexOf('250 2.0.0 OK'));
    expect(owed, owed.join(' | ')).to.have.length(2);
    expect(owed.every(l => l.startsWith('552 '))).to.equal(true);
  });
});
