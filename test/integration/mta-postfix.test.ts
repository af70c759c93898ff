// A real Postfix in front: a throwaway instance (test/helpers/postfix.ts) relays a domain to the
// real daemon over smtp: and lmtp:, mail submitted through Postfix's own sendmail. What the
// stand-in API receives is checked field by field and byte for byte; the docs' recipient
// verification makes Postfix refuse an unknown recipient at its own door (no backscatter); a
// sync-mode 451 stays in Postfix's queue and is delivered once on the retry; XFORWARD carries
// the original client through. Skipped, saying why, where Postfix is not installed.
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import {
  binaryAttachment,
  DOMAIN,
  expectPosts,
  messageWithAttachment,
  ROUTES,
  waitForPosts,
} from '../helpers/mta-mail.js';
import {
  POSTFIX_MISSING,
  startPostfix,
  type PostfixOptions,
  type ThrowawayPostfix,
} from '../helpers/postfix.js';
import { smtpDialog } from '../helpers/smtp-client.js';

/**
 * The recipient verification of docs/deployment.md's "Behind Postfix", as given there; for the
 * test only, the answers are cached in memory (no file) and the poll delay is shortened so that
 * the first RCPT already gets the verdict.
 */
const VERIFY_RECIPIENTS = {
  smtpd_recipient_restrictions:
    'permit_mynetworks, reject_unauth_destination, reject_unverified_recipient',
  unverified_recipient_reject_code: '550',
  address_verify_map: '',
  address_verify_poll_delay: '1s',
};

/**
 * Talks SMTP to Postfix's door as a client from afar: XCLIENT (allowed to this test's loopback
 * client) makes Postfix treat the session as 192.0.2.7's, outside mynetworks. Resolves with
 * the replies to `commands` (the greeting, EHLO and XCLIENT's are left out).
 */
async function fromAfar(port: number, commands: string[]): Promise<string[]> {
  const replies = await smtpDialog(port, [
    'EHLO relay.test',
    'XCLIENT ADDR=192.0.2.7 NAME=mx.customer.example HELO=mx.customer.example',
    'EHLO mx.customer.example',
    ...commands,
  ]);
  expect(replies[2], 'XCLIENT at Postfix').to.match(/^220 /);
  return replies.slice(4);
}

describe('Postfix in front (a throwaway Postfix relaying to mailbridge)', function () {
  this.timeout(60_000);
  let postfix: ThrowawayPostfix | undefined;
  // Postfix goes first: its cached connections would hold up the bridge's close
  const t = useBridge({
    beforeClose: async () => {
      await postfix?.stop();
      postfix = undefined;
    },
  });

  before(function () {
    if (POSTFIX_MISSING) {
      console.warn(`      ${POSTFIX_MISSING}`);
      this.skip();
    }
  });

  async function start(
    transport: (port: number) => string,
    bridgeOverrides: Record<string, unknown> = {},
    main: PostfixOptions['main'] = {},
  ): Promise<{ bridge: TestBridge; postfix: ThrowawayPostfix }> {
    const bridge = await t.start({
      api: apiAt(t.api.url),
      routes: ROUTES,
      ...bridgeOverrides,
    });
    postfix = await startPostfix({
      domain: DOMAIN,
      transport: transport(bridge.smtpPort),
      // fromAfar()'s XCLIENT
      main: { smtpd_authorized_xclient_hosts: '127.0.0.1', ...main },
    });
    return { bridge, postfix };
  }

  for (const [name, transport, lmtp] of [
    ['smtp:', (port: number) => `smtp:[127.0.0.1]:${port}`, false],
    ['lmtp:', (port: number) => `lmtp:inet:127.0.0.1:${port}`, true],
  ] as const) {
    it(`relays over ${name}: every field and the attachment arrive byte-exact`, async () => {
      const { postfix } = await start(transport, { smtp: { lmtp } });
      const attachment = binaryAttachment();
      await postfix.sendmail(
        'jane@customer.example',
        [`support@${DOMAIN}`, `billing@${DOMAIN}`],
        messageWithAttachment(attachment),
      );
      await waitForPosts(t.api, 2, () => postfix.log.tail());
      expectPosts(t.api.requests, attachment);
      // both recipients done in Postfix's eyes, through mailbridge, and nothing left queued
      await postfix.log.waitFor(/status=sent(.|\n)*status=sent/);
      expect(postfix.log.text()).to.match(
        new RegExp(`to=<support@${DOMAIN}>, relay=127\\.0\\.0\\.1`),
      );
      // the queue manager logs its removal after the delivery's status=sent: waited for
      await postfix.waitForQueue(queue => queue.length === 0, 'an empty queue');
    });
  }

  it('with recipient verification, an unknown recipient is refused at Postfix’s door: no bounce', async () => {
    const { postfix } = await start(
      port => `smtp:[127.0.0.1]:${port}`,
      {},
      VERIFY_RECIPIENTS,
    );
    // a spammer's forged sender: a bounce would go to the innocent owner of that address
    const replies = await fromAfar(postfix.port, [
      'MAIL FROM:<forged@victim.example>',
      `RCPT TO:<nobody@${DOMAIN}>`,
      `RCPT TO:<support@${DOMAIN}>`,
      'QUIT',
    ]);
    // Postfix asked mailbridge (a probe: RCPT only, no message) and passes its 550 on
    expect(replies[1]).to.match(/^550 5\.1\.1 /);
    expect(replies[1]).to.contain('No such recipient here');
    expect(replies[2]).to.match(/^250 /);
    await postfix.log.waitFor(/status=undeliverable/);
    await postfix.log.waitFor(/status=deliverable/);
    const log = postfix.log.text();
    expect(log).not.to.contain('sender non-delivery notification');
    expect(log).not.to.contain('to=<forged@victim.example>');
    await postfix.waitForQueue(queue => queue.length === 0, 'an empty queue');
    expect(t.api.requests).to.have.length(0);
  });

  it('without it (the old recipe), Postfix accepts the unknown recipient and bounces to the forged sender', async () => {
    const { postfix } = await start(port => `smtp:[127.0.0.1]:${port}`);
    const replies = await fromAfar(postfix.port, [
      'MAIL FROM:<forged@victim.example>',
      `RCPT TO:<nobody@${DOMAIN}>`,
      'DATA',
      'Subject: spam\r\n\r\nspam\r\n.\r\n',
      'QUIT',
    ]);
    expect(replies[1]).to.match(/^250 /);
    expect(replies[3]).to.match(/^250 /);
    // backscatter: mailbridge's 550 becomes Postfix's bounce, addressed to the forged sender
    await postfix.log.waitFor(/sender non-delivery notification/);
    await postfix.log.waitFor(/to=<forged@victim\.example>/);
  });

  it('sync mode: the API’s 503 becomes a 451 that Postfix retries into exactly one delivery', async () => {
    t.api.reply({ status: 503 });
    const { postfix } = await start(port => `smtp:[127.0.0.1]:${port}`, {
      delivery: { mode: 'sync' },
    });
    await postfix.sendmail(
      'jane@customer.example',
      [`support@${DOMAIN}`],
      'From: jane@customer.example\r\nSubject: retry me\r\nMessage-ID: <retry-1@customer.example>\r\n\r\nHello.\r\n',
    );
    await postfix.log.waitFor(/status=deferred .*451 4\.3\.0/);
    // the smtp client logs the deferral before the queue manager has moved the message into
    // the deferred queue: a flush before that would miss it
    await postfix.waitForQueue(
      queue => queue.length === 1 && queue[0]!.queue_name === 'deferred',
      'the message deferred',
    );
    expect(t.api.requests).to.have.length(1);
    // the retry now, not after Postfix's backoff
    await postfix.flush();
    await waitForPosts(t.api, 2, () => postfix.log.tail());
    await postfix.log.waitFor(/status=sent/);
    expect(t.api.requests).to.have.length(2);
    expect(t.api.requests[1]!.body.ext_msg_id).to.equal(
      '<retry-1@customer.example>',
    );
    expect(postfix.log.text().match(/status=sent/g)).to.have.length(1);
    await postfix.waitForQueue(queue => queue.length === 0, 'an empty queue');
  });

  it('XFORWARD: mailbridge logs and judges the client Postfix received the mail from', async () => {
    const { bridge, postfix } = await start(
      port => `smtp:[127.0.0.1]:${port}`,
      { smtp: { xforward: ['127.0.0.1'] } },
      { smtp_send_xforward_command: 'yes' },
    );
    const replies = await fromAfar(postfix.port, [
      'MAIL FROM:<jane@customer.example>',
      `RCPT TO:<support@${DOMAIN}>`,
      'DATA',
      'From: jane@customer.example\r\nSubject: from afar\r\n\r\nHello.\r\n.\r\n',
      'QUIT',
    ]);
    expect(replies[3]).to.match(/^250 /);
    await waitForPosts(t.api, 1, () => postfix.log.tail());
    const line = await bridge.waitForLog(l => 'outcome' in l);
    expect(line.remoteAddress).to.equal('192.0.2.7');
    expect(line.relay).to.equal('127.0.0.1');
  });
});
