// The core path end to end in the default (queue) mode: SMTP in, 250 once stored, then posted.
import { expect } from 'chai';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('smoke: SMTP to API', () => {
  const t = useBridge();

  beforeEach(async () => {
    await t.start({ api: apiAt(t.api.url) });
  });

  it('queues, then posts the mapped body with the bearer token', async () => {
    expect(t.bridge.config.delivery.mode).to.equal('queue');
    const result = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'Jane <jane@example.com>',
        To: 'support@example.com',
        Subject: 'Hi',
        'Message-ID': '<m1@example.com>',
      }),
    });
    expect(result.code).to.equal(250);
    expect(result.response).to.match(/queued as [0-9A-Z]+$/);
    const [request] = await t.api.waitForRequests(1);
    expect(request?.headers.authorization).to.equal('Bearer test-token-123');
    expect(request?.body).to.deep.equal({
      from: 'jane@example.com',
      to: 'support@example.com',
      subject: 'Hi',
      content: '<div>Hello.<br>\n</div>',
      ext_msg_id: '<m1@example.com>',
    });
  });
});
