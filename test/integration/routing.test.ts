// Recipient routing through the running daemon: which route, how many posts, and RCPT refusals.
import { expect } from 'chai';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw, smtpDialog } from '../helpers/smtp-client.js';

type Body = Record<string, unknown>;

type Route = Record<string, string | boolean>;

const ROUTES: Route[] = [
  {
    match: 'support@example.com',
    mailbox_id: 'mb-support',
    thread_from_subaddress: true,
  },
  { match: 'billing@example.com', mailbox_id: 'mb-billing' },
  { match: '*@example.org', mailbox_id: 'mb-sales' },
];

describe('routing', () => {
  const t = useBridge();

  /** Starts the daemon with this route table (the default one: exact and domain routes only). */
  async function start(routes: Route[] = ROUTES): Promise<void> {
    await t.start({
      // sync: every post of a message is made before its SMTP reply
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url),
      routes,
    });
  }

  /** Sends a message to the envelope recipients; expects 250; returns the bodies posted. */
  async function deliver(
    rcpt: string[],
    headers: Record<string, string> = {},
  ): Promise<Body[]> {
    const before = t.api.requests.length;
    const result = await sendRaw({
      port: t.bridge.smtpPort,
      to: rcpt,
      raw: makeMessage({
        From: 'jane@example.net',
        To: rcpt[0] ?? '',
        Subject: 'routing',
        'Message-ID': '<routing@example.net>',
        ...headers,
      }),
    });
    expect(result.code, result.response).to.equal(250);
    return t.api.requests.slice(before).map(r => r.body);
  }

  it('an exact route matches case-insensitively', async () => {
    await start();
    const [body, ...more] = await deliver(['Billing@Example.COM']);
    expect(more).to.have.length(0);
    expect(body?.mailbox_id).to.equal('mb-billing');
  });

  it('a "*@domain" route takes every address of the domain', async () => {
    await start();
    const [body, ...more] = await deliver(['anyone@example.org']);
    expect(more).to.have.length(0);
    expect(body?.mailbox_id).to.equal('mb-sales');
  });

  it('"*" takes anything else, and the most specific route wins', async () => {
    await start([...ROUTES, { match: '*', mailbox_id: 'mb-catchall' }]);
    const [stranger] = await deliver(['stranger@elsewhere.test']);
    expect(stranger?.mailbox_id).to.equal('mb-catchall');
    const [exact] = await deliver(['support@example.com']);
    expect(exact?.mailbox_id).to.equal('mb-support');
    const [domain] = await deliver(['x@example.org']);
    expect(domain?.mailbox_id).to.equal('mb-sales');
    expect(t.api.requests).to.have.length(3);
  });

  it('a +subaddress matches the exact route and becomes thread_id', async () => {
    await start();
    const [threaded] = await deliver(['support+T1@example.com']);
    expect(threaded).to.include({ mailbox_id: 'mb-support', thread_id: 'T1' });
    // without thread_from_subaddress the subaddress still routes, but sets no thread
    const [plain] = await deliver(['billing+T2@example.com']);
    expect(plain?.mailbox_id).to.equal('mb-billing');
    expect(plain).not.to.have.property('thread_id');
    // no subaddress: no thread (another message: the same one is not posted to a mailbox twice)
    const [bare] = await deliver(['support@example.com'], {
      'Message-ID': '<routing-bare@example.net>',
    });
    expect(bare).not.to.have.property('thread_id');
  });

  it('a recipient without a route is refused at RCPT with 550 5.1.1', async () => {
    await start();
    const replies = await smtpDialog(t.bridge.smtpPort, [
      'EHLO client.example.net',
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<nobody@unknown.test>',
      'RCPT TO:<support@example.com>',
      'QUIT',
    ]);
    expect(replies[3]).to.match(/^550 5\.1\.1 /);
    expect(replies[4]).to.match(/^250 /);
    expect(t.api.requests).to.have.length(0);
    const refused = await t.bridge.daemon.metrics.rcptRefused.get();
    expect(
      refused.values.find(v => v.labels.reason === 'no_route')?.value,
    ).to.equal(1);
  });

  it('a message for several routes is posted once per route, each with its mailbox_id', async () => {
    await start();
    const bodies = await deliver(
      ['support@example.com', 'billing@example.com', 'a@example.org'],
      { To: 'support@example.com, billing@example.com, a@example.org' },
    );
    expect(bodies.map(b => b.mailbox_id)).to.have.members([
      'mb-support',
      'mb-billing',
      'mb-sales',
    ]);
    for (const body of bodies) {
      expect(body.ext_msg_id).to.equal('<routing@example.net>');
      expect(body).not.to.have.property('bcc');
    }
  });

  it('bcc lists the envelope-only recipients of each route', async () => {
    await start();
    const bodies = await deliver(
      [
        'support@example.com',
        'a@example.org',
        'b@example.org',
        'billing@example.com',
      ],
      { To: 'support@example.com', Cc: 'a@example.org' },
    );
    const byMailbox = Object.fromEntries(
      bodies.map(b => [String(b.mailbox_id), b]),
    );
    expect(Object.keys(byMailbox)).to.have.members([
      'mb-support',
      'mb-sales',
      'mb-billing',
    ]);
    expect(byMailbox['mb-support']).not.to.have.property('bcc');
    expect(byMailbox['mb-sales']?.bcc).to.equal('b@example.org');
    expect(byMailbox['mb-billing']?.bcc).to.equal('billing@example.com');
  });

  it('several recipients on one route give ONE post', async () => {
    await start();
    const bodies = await deliver(
      ['a@example.org', 'b@example.org', 'c@example.org'],
      { To: 'a@example.org, b@example.org' },
    );
    expect(bodies).to.have.length(1);
    expect(bodies[0]).to.include({
      mailbox_id: 'mb-sales',
      to: 'a@example.org, b@example.org',
      bcc: 'c@example.org',
    });
  });

  describe('postmaster (RFC 5321 4.5.1)', () => {
    /** The table above, its exact route for support@ also taking postmaster mail. */
    const WITH_POSTMASTER: Route[] = [
      { ...ROUTES[0]!, postmaster: true },
      ...ROUTES.slice(1),
    ];

    /** A whole SMTP session, the message's recipients given as written; returns every reply. */
    function dialog(rcpts: string[]): Promise<string[]> {
      return smtpDialog(t.bridge.smtpPort, [
        'EHLO client.example.net',
        'MAIL FROM:<jane@example.net>',
        ...rcpts.map(rcpt => `RCPT TO:<${rcpt}>`),
        'DATA',
        `${makeMessage({
          From: 'jane@example.net',
          To: 'postmaster@example.com',
          Subject: 'abuse report',
          'Message-ID': '<postmaster@example.net>',
        })}\r\n.\r\n`,
        'QUIT',
      ]);
    }

    it('RCPT TO:<postmaster>, in any case, goes to the route that says postmaster: true', async () => {
      await start(WITH_POSTMASTER);
      const replies = await dialog(['PostMaster']);
      expect(replies[3], 'RCPT').to.match(/^250 /);
      expect(replies[5], 'after DATA').to.match(/^250 /);
      expect(t.api.requests).to.have.length(1);
      expect(t.api.requests[0]?.body).to.include({
        mailbox_id: 'mb-support',
        subject: 'abuse report',
        bcc: 'PostMaster',
      });
      expect(t.api.requests[0]?.body).not.to.have.property('thread_id');
    });

    it('postmaster@ every routed domain goes there too, never postmaster@ another domain', async () => {
      await start(WITH_POSTMASTER);
      const replies = await dialog([
        'postmaster@example.com', // the domain of exact routes only
        'Postmaster@Example.ORG', // a domain that has its own "*@domain" route
        'postmaster@elsewhere.test', // no route takes this domain: no open door
      ]);
      expect(replies[3], 'postmaster@example.com').to.match(/^250 /);
      expect(replies[4], 'Postmaster@Example.ORG').to.match(/^250 /);
      expect(replies[5], 'postmaster@elsewhere.test').to.match(/^550 5\.1\.1 /);
      expect(replies[7], 'after DATA').to.match(/^250 /);
      expect(t.api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
        'mb-support',
      ]);
    });

    it('without a postmaster route: <postmaster> goes to "*", postmaster@domain as any address', async () => {
      await start([...ROUTES, { match: '*', mailbox_id: 'mb-catchall' }]);
      const replies = await dialog(['postmaster', 'postmaster@example.org']);
      expect(replies[3]).to.match(/^250 /);
      expect(replies[4]).to.match(/^250 /);
      expect(replies[6]).to.match(/^250 /);
      expect(t.api.requests.map(r => r.body.mailbox_id)).to.have.members([
        'mb-catchall',
        'mb-sales',
      ]);
    });

    it('with neither, <postmaster> is refused, and the start says so', async () => {
      await start();
      const warning = t.bridge.logs.find(l =>
        String(l.message).startsWith('no route takes postmaster mail'),
      );
      expect(warning?.level).to.equal('warn');
      const replies = await smtpDialog(t.bridge.smtpPort, [
        'EHLO client.example.net',
        'MAIL FROM:<jane@example.net>',
        'RCPT TO:<postmaster>',
        'QUIT',
      ]);
      expect(replies[3]).to.match(/^550 5\.1\.1 /);
    });
  });
});
