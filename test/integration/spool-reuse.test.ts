// The free pool end to end: a delivered message's file is written over by the next message, and
// the next message arrives exactly as sent (nothing of the longer one before it).
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { apiAt, startBridge, type TestBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('queue mode: files of delivered messages are written over', () => {
  let api: FakeApi;
  let bridge: TestBridge;

  beforeEach(async () => {
    api = await startFakeApi();
    bridge = await startBridge({ api: apiAt(api.url) });
  });
  afterEach(async () => {
    await bridge.close();
    await api.close();
  });

  async function send(subject: string, body: string): Promise<void> {
    const result = await sendRaw({
      port: bridge.smtpPort,
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

  it("a short message over a long one's file is posted exactly; the file goes back to free/", async () => {
    const free = join(bridge.spoolDir, 'free');
    await send('long', `${'long line of the first message\r\n'.repeat(300)}`);
    await api.waitForRequests(1);
    await bridge.waitForLog(l => l.message === 'message delivered');
    expect(await readdir(free)).to.have.length(1);
    expect(bridge.daemon.spool.freeFiles).to.equal(1);

    await send('short', 'Short.\r\n');
    const [, second] = await api.waitForRequests(2);
    expect(second!.body.subject).to.equal('short');
    expect(second!.body.content).to.equal('Short.\n');
    await bridge.waitForLog(
      l =>
        l.message === 'message delivered' &&
        l.messageId === '<short@example.net>',
    );
    // the one file went round: written over, delivered, back in the pool
    expect(await readdir(free)).to.have.length(1);
    expect(bridge.daemon.spool.freeFiles).to.equal(1);
  });
});
