// LMTP in hybrid mode, a route refused for good beside routes whose policy dropped or held the
// message: each recipient's reply says what became of its route. A dropped or held route was
// never posted, so its recipients are not told "delivered".
import { expect } from 'chai';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import {
  makeMessage,
  openSession,
  type RawSession,
} from '../helpers/smtp-client.js';

const ROUTES: Array<Record<string, string>> = [
  { match: 'news@example.com', mailbox_id: 'mb-news', bulk: 'drop' },
  { match: 'lists@example.com', mailbox_id: 'mb-lists', bulk: 'hold' },
  { match: 'billing@example.com', mailbox_id: 'mb-billing' },
  { match: 'support@example.com', mailbox_id: 'mb-support' },
];
const RCPTS = ROUTES.map(r => r.match!);

describe('LMTP hybrid replies for routes a policy dropped or held', () => {
  let session: RawSession | undefined;
  const t = useBridge({
    beforeClose: () => {
      session?.socket.destroy();
    },
  });

  it('a refusal beside them: 554 to its recipient, 250 dropped, held and delivered to the others', async () => {
    const bridge = await t.start({
      delivery: { mode: 'hybrid' },
      api: apiAt(t.api.url),
      routes: ROUTES,
      smtp: { lmtp: true },
    });
    t.api.respondWith(r =>
      r.body.mailbox_id === 'mb-billing'
        ? { status: 422, body: { errors: [] } }
        : { status: 204 },
    );
    session = await openSession(bridge.smtpPort);
    session.socket.write('LHLO client.example.net\r\n');
    await session.waitFor(/^250 /m);
    session.clear();
    session.socket.write(
      'MAIL FROM:<list@example.net>\r\n' +
        RCPTS.map(r => `RCPT TO:<${r}>\r\n`).join('') +
        'DATA\r\n',
    );
    await session.waitFor(/^354 /m);
    session.clear();
    const message = makeMessage({
      From: 'list@example.net',
      Subject: 'the monthly letter',
      Precedence: 'bulk',
    });
    session.socket.write(`${message}.\r\nNOOP\r\n`);
    await session.waitFor(/^250 2\.0\.0 OK\r\n/m);
    const lines: string[] = session.replies().match(/^\d{3} .*$/gm) ?? [];
    const replies = lines.slice(0, lines.lastIndexOf('250 2.0.0 OK'));
    expect(replies).to.have.length(4);
    const id = queueIdOf(replies[3]!);
    expect(replies).to.deep.equal([
      `250 2.6.0 OK: dropped as ${id}`,
      `250 2.6.0 OK: held as ${id}`,
      '554 5.6.0 Message rejected by the destination',
      `250 2.6.0 OK: delivered as ${id}`,
    ]);
    expect(t.api.requests.map(r => r.body.mailbox_id).sort()).to.deep.equal([
      'mb-billing',
      'mb-support',
    ]);
  });
});
