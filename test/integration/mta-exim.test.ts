// A real Exim in front: a throwaway daemon (test/helpers/exim.ts: its own -C configuration,
// spool and port, run as the exim user) relays a domain to the real daemon over SMTP and LMTP,
// mail submitted on Exim's command line. What the stand-in API receives is checked field by
// field and byte for byte; a recipient callout makes Exim refuse an unknown recipient at its
// own door; a sync-mode 451 stays in Exim's queue and is delivered once by the next queue run.
// Skipped, saying why, where Exim is not installed.
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import {
  EXIM_MISSING,
  startExim,
  type EximOptions,
  type ThrowawayExim,
} from '../helpers/exim.js';
import {
  binaryAttachment,
  DOMAIN,
  expectPosts,
  messageWithAttachment,
  ROUTES,
  waitForPosts,
} from '../helpers/mta-mail.js';
import { smtpDialog } from '../helpers/smtp-client.js';

describe('Exim in front (a throwaway Exim relaying to mailbridge)', function () {
  this.timeout(60_000);
  let exim: ThrowawayExim | undefined;
  // Exim goes first: its connections would hold up the bridge's close
  const t = useBridge({
    beforeClose: async () => {
      await exim?.stop();
      exim = undefined;
    },
  });

  before(function () {
    if (EXIM_MISSING) {
      console.warn(`      ${EXIM_MISSING}`);
      this.skip();
    }
  });

  async function start(
    bridgeOverrides: Record<string, unknown> = {},
    options: Partial<EximOptions> = {},
  ): Promise<{ bridge: TestBridge; exim: ThrowawayExim }> {
    const bridge = await t.start({
      api: apiAt(t.api.url),
      routes: ROUTES,
      ...bridgeOverrides,
    });
    exim = await startExim({
      domain: DOMAIN,
      port: bridge.smtpPort,
      ...options,
    });
    return { bridge, exim };
  }

  for (const lmtp of [false, true]) {
    it(`relays over ${lmtp ? 'LMTP' : 'SMTP'}: every field and the attachment arrive byte-exact`, async () => {
      const { exim } = await start({ smtp: { lmtp } }, { lmtp });
      const attachment = binaryAttachment();
      await exim.sendmail(
        'jane@customer.example',
        [`support@${DOMAIN}`, `billing@${DOMAIN}`],
        messageWithAttachment(attachment),
      );
      await waitForPosts(t.api, 2, () => exim.log.tail());
      expectPosts(t.api.requests, attachment);
      await exim.log.waitFor(/Completed/);
      expect(exim.log.text()).to.match(
        new RegExp(`=> support@${DOMAIN} R=mailbridge T=mailbridge_smtp`),
      );
      expect(await exim.queue()).to.equal('');
    });
  }

  it('with a recipient callout, an unknown recipient is refused at Exim’s door: no bounce', async () => {
    const { exim } = await start({}, { verifyRecipients: true });
    const replies = await smtpDialog(exim.port, [
      'EHLO spammer.example',
      'MAIL FROM:<forged@victim.example>',
      `RCPT TO:<nobody@${DOMAIN}>`,
      `RCPT TO:<support@${DOMAIN}>`,
      'QUIT',
    ]);
    // Exim asked mailbridge (RCPT only, no message) and passes its 550 on
    expect(replies[3]).to.match(/^550[- ]/);
    expect(replies[3]).to.contain('No such recipient here');
    expect(replies[4]).to.match(/^250 /);
    await exim.log.waitFor(/rejected RCPT <nobody@/);
    expect(exim.log.text()).not.to.contain('forged@victim.example R=');
    expect(await exim.queue()).to.equal('');
    expect(t.api.requests).to.have.length(0);
  });

  it('sync mode: the API’s 503 becomes a 451 that a queue run retries into exactly one delivery', async () => {
    t.api.reply({ status: 503 });
    const { exim } = await start({ delivery: { mode: 'sync' } });
    await exim.sendmail(
      'jane@customer.example',
      [`support@${DOMAIN}`],
      'From: jane@customer.example\r\nSubject: retry me\r\nMessage-ID: <retry-1@customer.example>\r\n\r\nHello.\r\n',
    );
    // -odi: the first attempt is over when sendmail returns
    expect(exim.log.text()).to.match(
      /== support@help\.example\.com .*451 4\.3\.0/,
    );
    expect(t.api.requests).to.have.length(1);
    await exim.flush();
    await waitForPosts(t.api, 2, () => exim.log.tail());
    await exim.log.waitFor(/Completed/);
    expect(t.api.requests).to.have.length(2);
    expect(t.api.requests[1]!.body.ext_msg_id).to.equal(
      '<retry-1@customer.example>',
    );
    expect(exim.log.text().match(/=> support@/g)).to.have.length(1);
    expect(await exim.queue()).to.equal('');
  });
});
