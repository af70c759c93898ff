// Regression (review): a fresh message (250 given) whose parking fails once must not wait in the claim folder
// of the live daemon until its next start.
import { expect } from 'chai';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { ManualClock, queueIdOf } from '../helpers/queue-tools.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

const HOUR = 3_600_000;

function message(id: string): string {
  return makeMessage({
    From: 'jane@example.net',
    To: 'support@example.com',
    Subject: 'stranded',
    'Message-ID': `<${id}@example.net>`,
  });
}

describe('a fresh message whose parking failed', function () {
  this.timeout(20_000);

  const t = useBridge();

  async function queue(raw: string): Promise<string> {
    const result = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw,
    });
    expect(result.code, result.response).to.equal(250);
    return queueIdOf(result.response);
  }

  function delivered(id: string): Promise<unknown> {
    return t.bridge.waitForLog(
      l => l.queueId === id && l.message === 'message delivered',
    );
  }

  it('accepted during a pause while msg/ is briefly unusable: delivered once the API is back, without a restart', async () => {
    const clock = new ManualClock(Date.now() + HOUR);
    await t.start(
      {
        api: apiAt(t.api.url),
        delivery: {
          scanIntervalMs: 100,
          retry: { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 8000 },
        },
      },
      { daemon: { now: clock.now, random: () => 0.5 } },
    );
    const spoolDir = t.bridge.spoolDir;
    t.api.setDefault({ status: 401 });
    const first = await queue(message('stranded-1'));
    await t.bridge.waitForLog(
      l => l.queueId === first && l.message === 'delivery deferred',
    );

    // a moment of disk trouble: msg/ cannot take the raw file of the next parking
    await rename(join(spoolDir, 'msg'), join(spoolDir, 'msg.away'));
    await writeFile(join(spoolDir, 'msg'), 'not a folder');
    const second = await queue(message('stranded-2'));
    await t.bridge.waitForLog(
      l =>
        l.queueId === second &&
        String(l.message).startsWith('could not move a message to the queue'),
    );
    await rm(join(spoolDir, 'msg'));
    await rename(join(spoolDir, 'msg.away'), join(spoolDir, 'msg'));
    await mkdir(join(spoolDir, 'msg'), { recursive: true });

    // the API takes our token again: the probe resumes delivery
    t.api.setDefault({ status: 204 });
    clock.advance(HOUR);
    await delivered(first);
    // tried again at a scan, once msg/ works: no restart needed
    await delivered(second);
    expect(
      t.api.requests.filter(
        r => r.body.ext_msg_id === '<stranded-2@example.net>',
      ),
    ).to.have.length(1);
  });
});
