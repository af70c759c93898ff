// Slow-drip clients (issue 16): deadlines that trickling does not reset, for a command line, a
// DATA and a whole session; past one, 421 4.4.2 and the connection closes, nothing is stored.
import { expect } from 'chai';
import { once } from 'node:events';
import { readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import {
  makeMessage,
  openDataSession,
  openSession,
  sendRaw,
  type RawSession,
} from '../helpers/smtp-client.js';
import { spoolIds, waitFor } from '../helpers/wait-for.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

/** The deadline under test; every trickle below lasts several times longer. */
const DEADLINE_MS = 300;
/** The session deadline, for tests that need a few commands done before it. */
const SESSION_MS = 1000;
/** One byte every this many ms: a 60-byte line takes 3 s, ten deadlines. */
const DRIP_MS = 50;
/** How long a test waits for what a deadline should have done long before. */
const PATIENCE_MS = 10_000;

/** Writes `text` one byte every DRIP_MS ms, until it is all sent or the connection is over. */
function trickle(session: RawSession, text: string): void {
  const { socket } = session;
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable || at >= text.length) {
      clearInterval(timer);
      return;
    }
    socket.write(text.charAt(at++));
  }, DRIP_MS);
  socket.once('close', () => clearInterval(timer));
}

/** The whole reply lines among those since the last clear() (the last line of each reply). */
function replyLines(session: RawSession): string[] {
  return [...session.replies().matchAll(/^\d{3} [^\r\n]*(?=\r\n)/gm)].map(
    m => m[0],
  );
}

/**
 * Reply number `index` (from 0) since the last clear(), once it is there, or what was said
 * before the connection closed without it; rejects after PATIENCE_MS.
 */
async function nextReply(session: RawSession, index = 0): Promise<string> {
  const { socket } = session;
  await waitFor(
    () => replyLines(session).length > index || socket.closed,
    [
      [socket, 'data'],
      [socket, 'close'],
    ],
    {
      timeoutMs: PATIENCE_MS,
      what: `reply ${index}`,
      describe: () => JSON.stringify(session.replies()),
    },
  );
  return (
    replyLines(session)[index] ??
    `closed after ${JSON.stringify(session.replies())}`
  );
}

/** Resolves once the connection is closed (by the server: the client never ends it here). */
async function closed(session: RawSession): Promise<void> {
  if (!session.socket.closed) await once(session.socket, 'close');
}

/** What `mailbridge_smtp_session_timeouts_total` counted, by deadline. */
async function timeoutCounts(
  bridge: TestBridge,
): Promise<Record<string, number>> {
  const { values } = await bridge.daemon.metrics.sessionTimeouts.get();
  // every deadline is shown from the start, at 0: those that counted
  return Object.fromEntries(
    values.filter(v => v.value).map(v => [String(v.labels.deadline), v.value]),
  );
}

describe('slow-drip clients: command, DATA and session deadlines', function () {
  this.timeout(30_000);
  const sessions: RawSession[] = [];
  const t = useBridge({
    beforeClose: () => {
      for (const session of sessions.splice(0)) session.socket.destroy();
    },
  });

  /**
   * Queue mode (the default), the stand-in API, one session per client, and deadlines of a
   * minute but for those `smtp` makes small.
   */
  async function start(smtp: Record<string, unknown>): Promise<TestBridge> {
    const options: Record<string, unknown> = {
      maxConnectionsPerClient: 1,
      commandTimeoutMs: 60_000,
      dataTimeoutMs: 60_000,
      dataMinRate: 0,
      sessionTimeoutMs: 60_000,
      ...smtp,
    };
    return t.start({
      api: apiAt(t.api.url),
      smtp: options as Record<string, never>,
    });
  }

  function keep(session: RawSession): RawSession {
    session.socket.on('error', () => undefined);
    sessions.push(session);
    return session;
  }

  /** The session's one `session timed out` line, once it is written. */
  function timedOutLine(bridge: TestBridge): Promise<Record<string, unknown>> {
    return bridge.waitForLog(l => l.message === 'session timed out');
  }

  it('a command line trickled past smtp.commandTimeoutMs gets 421 4.4.2 and is closed; the client may come again', async () => {
    const bridge = await start({ commandTimeoutMs: DEADLINE_MS });
    const session = keep(await openSession(bridge.smtpPort));
    trickle(
      session,
      'EHLO a-rather-long-name-for-a-slow-client.example.net\r\n',
    );
    expect(await nextReply(session)).to.equal(
      '421 4.4.2 Command not received in time, closing connection',
    );
    await closed(session);
    const line = await timedOutLine(bridge);
    expect(line).to.include({ deadline: 'command', code: 421 });
    expect(await timeoutCounts(bridge)).to.deep.equal({ command: 1 });
    // its count is given back (one session per client here): the next one is greeted
    await bridge.waitForLog(l => l.message === 'session closed');
    const again = keep(await openSession(bridge.smtpPort));
    again.socket.write('EHLO quick.example.net\r\n');
    expect(await nextReply(again)).to.match(/^250 /);
  });

  it('a TLS handshake after STARTTLS trickled past smtp.commandTimeoutMs is closed', async () => {
    const bridge = await start({
      commandTimeoutMs: DEADLINE_MS,
      tls: {
        key: join(FIXTURES, 'localhost.key'),
        cert: join(FIXTURES, 'localhost.crt'),
      },
    });
    const session = keep(await openSession(bridge.smtpPort));
    session.socket.write('EHLO client.example.net\r\nSTARTTLS\r\n');
    await session.waitFor(/^220 /m);
    // a TLS record header announcing 512 bytes of handshake, then its body a byte at a time
    session.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    trickle(session, '\0'.repeat(512));
    // no reply can be sent in the middle of a handshake: the connection just closes
    await waitFor(() => session.socket.closed, [[session.socket, 'close']], {
      timeoutMs: PATIENCE_MS,
      what: 'the connection closed',
    });
    const line = await timedOutLine(bridge);
    expect(line).to.include({ deadline: 'command', code: 421 });
  });

  it('a DATA trickled past its deadline gets 421 4.4.2 and is closed; nothing is posted or spooled', async () => {
    // 200 KiB at once earns 2 s at 100 KB/s, past the floor; then one byte every 50 ms
    const bridge = await start({
      dataTimeoutMs: DEADLINE_MS,
      dataMinRate: 100_000,
    });
    const tmp = join(bridge.spoolDir, 'tmp');
    const tmpWatch = watch(tmp);
    try {
      const session = keep(await openDataSession(bridge.smtpPort));
      const started = Date.now();
      const head = makeMessage(
        {
          From: 'jane@example.net',
          To: 'support@example.com',
          Subject: 'slow',
        },
        `${'x'.repeat(1022)}\r\n`.repeat(200),
      );
      session.socket.write(head);
      // larger than a message kept in memory: it is being written to tmp/
      await waitFor(() => readdirSync(tmp).length > 0, [[tmpWatch, 'change']], {
        timeoutMs: PATIENCE_MS,
        what: 'the message in tmp/',
      });
      trickle(session, 'y'.repeat(100_000));
      expect(await nextReply(session)).to.equal(
        '421 4.4.2 Message not received in time, closing connection',
      );
      // the bytes it sent bought it time beyond the floor
      expect(Date.now() - started).to.be.at.least(1500);
      await closed(session);
      const line = await timedOutLine(bridge);
      expect(line).to.include({ deadline: 'data', code: 421 });
      expect(line.dataBytes).to.be.at.least(head.length);
      await bridge.waitForLog(
        l => l.message === 'message aborted: DATA not received in time',
      );
      // the half-received message is removed, never queued nor posted
      await waitFor(
        () => readdirSync(tmp).length === 0,
        [[tmpWatch, 'change']],
        { timeoutMs: PATIENCE_MS, what: 'tmp/ emptied' },
      );
      expect(await spoolIds(bridge.spoolDir, 'active')).to.deep.equal([]);
      expect(await spoolIds(bridge.spoolDir, 'queue')).to.deep.equal([]);
      expect(t.api.requests).to.have.length(0);
      expect(await timeoutCounts(bridge)).to.deep.equal({ data: 1 });
    } finally {
      tmpWatch.close();
    }
  });

  it('a session kept busy with quick NOOPs past smtp.sessionTimeoutMs gets 421 4.4.2 and is closed', async () => {
    // a longer deadline here: time for a few NOOPs first, even on a busy machine
    const bridge = await start({ sessionTimeoutMs: SESSION_MS });
    const session = keep(await openSession(bridge.smtpPort));
    const started = Date.now();
    let answered = 0;
    for (;;) {
      session.socket.write('NOOP\r\n');
      const reply = await nextReply(session, answered);
      if (!reply.startsWith('250 ')) {
        expect(reply).to.equal(
          '421 4.4.2 Session time limit reached, closing connection',
        );
        break;
      }
      answered++;
      // without the deadline this would go on for ever: give up well past it
      expect(Date.now() - started, 'still open').to.be.below(PATIENCE_MS);
      await new Promise(resolve => setTimeout(resolve, DRIP_MS));
    }
    // busy all along: no idle time, no slow line
    expect(answered).to.be.at.least(2);
    await closed(session);
    expect(await timedOutLine(bridge)).to.include({ deadline: 'session' });
    expect(await timeoutCounts(bridge)).to.deep.equal({ session: 1 });
  });

  it('the session deadline does not cut a DATA short: the message is answered 250, then the session closes', async () => {
    const bridge = await start({ sessionTimeoutMs: SESSION_MS });
    const session = keep(await openDataSession(bridge.smtpPort));
    // within DATA's own deadline (60 s), but well past the session's (4 s of trickling)
    trickle(
      session,
      makeMessage(
        { From: 'jane@example.net', Subject: 'slow but steady' },
        'Hello, in no hurry at all.\r\n',
      ) + '.\r\n',
    );
    expect(await nextReply(session, 0)).to.match(/^250 /);
    expect(await nextReply(session, 1)).to.equal(
      '421 4.4.2 Session time limit reached, closing connection',
    );
    await closed(session);
    await bridge.waitForLog(l => l.message === 'message queued');
  });

  it('a normal client is not affected by small deadlines', async () => {
    const bridge = await start({
      commandTimeoutMs: DEADLINE_MS,
      dataTimeoutMs: SESSION_MS,
      dataMinRate: 1_000_000,
      sessionTimeoutMs: 10_000,
      // one session after the other: the first may not be closed on our side when the next
      // one opens (the greeting comes at once in tests)
      maxConnectionsPerClient: 2,
    });
    for (const size of [10, 300_000]) {
      const sent = await sendRaw({
        port: bridge.smtpPort,
        to: ['support@example.com'],
        raw: makeMessage(
          { From: 'jane@example.net', Subject: `normal ${size}` },
          `${'z'.repeat(99)}\r\n`.repeat(Math.ceil(size / 101)),
        ),
      });
      expect(sent.code, sent.response).to.equal(250);
    }
    expect(await timeoutCounts(bridge)).to.deep.equal({});
    expect(
      bridge.logs.filter(l => l.message === 'session timed out'),
    ).to.have.length(0);
  });
});
