// The DATA phase through the daemon (smtp/data-scan.ts reads it): escape dots removed wherever
// the client's writes cut them, and only CRLF . CRLF ends a message, so commands hidden behind a
// bare LF dot stay text of the message (SMTP smuggling).
import { expect } from 'chai';
import { once } from 'node:events';
import { apiAt, useBridge } from '../helpers/bridge.js';
import {
  makeMessage,
  openDataSession,
  type RawSession,
} from '../helpers/smtp-client.js';

const HEADERS = {
  From: 'Jane <jane@example.net>',
  To: 'support@example.com',
  Subject: 'Dots',
  'Message-ID': '<dots@example.net>',
};

describe('the DATA phase through the daemon', () => {
  const sessions: RawSession[] = [];
  const t = useBridge({
    beforeClose: () => {
      for (const session of sessions.splice(0)) session.socket.destroy();
    },
  });

  beforeEach(async () => {
    await t.start({ api: apiAt(t.api.url) });
  });

  /** Writes the pieces one write each, Nagle off, waiting for a drain when the socket asks. */
  async function writeEach(
    session: RawSession,
    pieces: string[],
  ): Promise<void> {
    session.socket.setNoDelay(true);
    for (const piece of pieces) {
      if (!session.socket.write(piece, 'latin1')) {
        await once(session.socket, 'drain');
      }
    }
  }

  it('escape dots cut between writes are removed, and the terminator cut too ends the message', async () => {
    const session = await openDataSession(t.bridge.smtpPort);
    sessions.push(session);
    const raw = makeMessage(HEADERS, '..one\r\nmiddle\r\n...two\r\nlast\r\n');
    const wire = `${raw}.\r\n`;
    const cuts = [
      wire.indexOf('..one') + 1,
      wire.indexOf('...two') + 1,
      wire.length - 2,
    ];
    await writeEach(session, [
      wire.slice(0, cuts[0]),
      wire.slice(cuts[0], cuts[1]),
      wire.slice(cuts[1], cuts[2]),
      wire.slice(cuts[2]),
    ]);
    await session.waitFor(/^250 /m);
    const [request] = await t.api.waitForRequests(1);
    expect(request?.body.content).to.equal(
      '<div>.one<br>\nmiddle<br>\n..two<br>\nlast<br>\n</div>',
    );
  });

  it('commands behind a bare LF dot stay in the message: one message, one 250', async () => {
    const session = await openDataSession(t.bridge.smtpPort);
    sessions.push(session);
    const hidden =
      'before\n.\nMAIL FROM:<mallory@example.org>\r\n' +
      'RCPT TO:<support@example.com>\r\nDATA\r\nsmuggled\r\n';
    await writeEach(session, [
      makeMessage(HEADERS, hidden),
      '.\r\n',
      'QUIT\r\n',
    ]);
    await session.waitFor(/^221 /m);
    expect(session.replies().match(/^250 /gm)).to.have.length(1);
    expect(session.replies()).not.to.match(/^354 /m);
    const [request] = await t.api.waitForRequests(1);
    expect(request?.body.content).to.include(
      'MAIL FROM:&lt;mallory@example.org&gt;',
    );
    expect(request?.body.content).to.include('smuggled');
    expect(t.api.requests).to.have.length(1);
  });
});
