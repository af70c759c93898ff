// threadFromSubject and fromReplyTo on a route, through the running daemon.
import { expect } from 'chai';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

type Body = Record<string, unknown>;

describe('route keys threadFromSubject and fromReplyTo', () => {
  const t = useBridge();

  async function start(): Promise<void> {
    await t.start({
      // sync: the post is made before the SMTP reply
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url),
      routes: [
        {
          match: 'support@example.com',
          mailbox_id: 'mb-support',
          thread_from_subaddress: true,
          threadFromSubject: '\\[#(T\\d+)\\]',
          fromReplyTo: true,
        },
        { match: 'sales@example.com', mailbox_id: 'mb-sales' },
      ],
    });
  }

  async function deliver(
    rcpt: string,
    headers: Record<string, string>,
  ): Promise<Body> {
    const before = t.api.requests.length;
    const result = await sendRaw({
      port: t.bridge.smtpPort,
      to: [rcpt],
      raw: makeMessage({
        From: 'Web form <noreply@forms.example.net>',
        To: rcpt,
        'Message-ID': '<form-1@forms.example.net>',
        ...headers,
      }),
    });
    expect(result.code, result.response).to.equal(250);
    const bodies = t.api.requests.slice(before).map(r => r.body);
    expect(bodies).to.have.length(1);
    return bodies[0]!;
  }

  it('the subject tag is thread_id and the Reply-To address is from', async () => {
    await start();
    const body = await deliver('support@example.com', {
      Subject: 'Re: [#T123] Printer',
      'Reply-To': 'Jane <jane@example.org>',
    });
    expect(body.thread_id).to.equal('T123');
    expect(body.from).to.equal('jane@example.org');
  });

  it('the +subaddress wins over the subject; two Reply-To addresses leave From', async () => {
    await start();
    const body = await deliver('support+T9@example.com', {
      Subject: 'Re: [#T123] Printer',
      'Reply-To': 'jane@example.org, bob@example.org',
    });
    expect(body.thread_id).to.equal('T9');
    expect(body.from).to.equal('noreply@forms.example.net');
  });

  it('a route without the keys takes neither', async () => {
    await start();
    const body = await deliver('sales@example.com', {
      Subject: 'Re: [#T123] Printer',
      'Reply-To': 'jane@example.org',
    });
    expect(body).to.not.have.property('thread_id');
    expect(body.from).to.equal('noreply@forms.example.net');
  });
});
