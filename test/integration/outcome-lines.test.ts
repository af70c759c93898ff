// The outcome lines answer "did mail for support@ arrive?": the recipients (as Postfix's to=),
// the mailboxes they went to, and the delay since the message was accepted.
import { expect } from 'chai';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('outcome lines: recipients, mailboxes, delay', () => {
  const t = useBridge();

  it('the accept line names the recipients; the delivery line the recipients, mailboxes and delay', async () => {
    const bridge = await t.start({
      api: apiAt(t.api.url),
      routes: [
        { match: 'support@example.com', mailbox_id: 'mb-support' },
        { match: '*@example.org', mailbox_id: 'mb-sales' },
      ],
    });
    const to = ['support@example.com', 'a@example.org', 'b@example.org'];
    const sent = await sendRaw({
      port: bridge.smtpPort,
      to,
      raw: makeMessage({
        From: 'jane@example.net',
        To: to.join(', '),
        Subject: 'Where did it go?',
        'Message-ID': '<where-1@example.net>',
      }),
    });
    expect(sent.code, sent.response).to.equal(250);
    const id = queueIdOf(sent.response);
    const accepted = await bridge.waitForLog(
      l => l.queueId === id && l.outcome === 'queued',
    );
    expect(accepted.to).to.deep.equal(to);
    expect(accepted.recipients).to.equal(3);
    const delivered = await bridge.waitForLog(
      l => l.queueId === id && l.message === 'message delivered',
    );
    expect(delivered.to).to.deep.equal(to);
    expect(delivered.mailboxes).to.deep.equal(['mb-support', 'mb-sales']);
    expect(delivered.delay).to.be.a('number').and.to.be.at.least(0);
  });
});
