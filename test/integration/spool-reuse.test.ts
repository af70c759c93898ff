// The free pool end to end: a delivered message's file is written over by the next message, and
// the next message arrives exactly as sent (nothing of the longer one before it).
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('queue mode: files of delivered messages are written over', () => {
  const t = useBridge();

  beforeEach(async () => {
    await t.start({ api: apiAt(t.api.url) });
  });

  async function send(subject: string, body: string): Promise<void> {
    const result = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage(
        {
          From: 'jane@example.net',
          To: 'support@example.com',
          Subject: subject,
          'Message-ID': `<${subject}@example.net>`,
        },
        body,
      ),
    });
    expect(result.code).to.equal(250);
  }

  it("a short message over a long one's file is posted exactly; the files go back to free/", async () => {
    const free = join(t.bridge.spoolDir, 'free', 'active');
    await send('long', `${'long line of the first message\r\n'.repeat(300)}`);
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    // moved to free/, but free only once a commit has fsynced the claim folder after the move
    expect(await readdir(free)).to.have.length(1);
    expect(t.bridge.daemon.spool.takeFree()).to.equal(undefined);
    await send('middle', 'Middle.\r\n');
    await t.bridge.waitForLog(
      l =>
        l.message === 'message delivered' &&
        l.messageId === '<middle@example.net>',
    );
    // the long message's file is written over by the short one
    await send('short', 'Short.\r\n');
    const requests = await t.api.waitForRequests(3);
    expect(requests[2]!.body.subject).to.equal('short');
    expect(requests[2]!.body.content).to.equal('Short.\n');
    await t.bridge.waitForLog(
      l =>
        l.message === 'message delivered' &&
        l.messageId === '<short@example.net>',
    );
    // three messages delivered, two files: one went round
    expect(await readdir(free)).to.have.length(2);
    expect(t.bridge.daemon.spool.freeFiles).to.equal(2);
  });
});
