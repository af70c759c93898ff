// The journal of fresh small messages end to end: messages of any length one after another
// arrive exactly as sent; a large message still gets a file of its own; what a stopped daemon
// left in its journal is parked and delivered once by the next start; and in a cluster, the
// worker that takes over a slot parks the journal of the dead one without touching a live
// worker's.
import { expect } from 'chai';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

/** The journal segments and message files of a claim folder. */
async function claimFolder(spoolDir: string, folder = 'active') {
  const names = await readdir(join(spoolDir, folder)).catch((): string[] => []);
  return {
    segments: names.filter(n => n.startsWith('journal-')),
    others: names.filter(n => !n.startsWith('journal-')),
  };
}

function message(subject: string, body = 'Hello.\r\n'): string {
  return makeMessage(
    {
      From: 'jane@example.net',
      To: 'support@example.com',
      Subject: subject,
      'Message-ID': `<${subject}@example.net>`,
    },
    body,
  );
}

describe('the journal of fresh small messages', function () {
  this.timeout(20_000);
  const t = useBridge();

  async function send(bridge: TestBridge, raw: string): Promise<string> {
    const result = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw,
    });
    expect(result.code, result.response).to.equal(250);
    return queueIdOf(result.response);
  }

  function delivered(bridge: TestBridge, subject: string): Promise<unknown> {
    return bridge.waitForLog(
      l =>
        l.message === 'message delivered' &&
        l.messageId === `<${subject}@example.net>`,
    );
  }

  it('a long, a middle and a short message one after another: each posted exactly as sent', async () => {
    const bridge = await t.start({ api: apiAt(t.api.url) });
    await send(
      bridge,
      message('long', 'long line of the first one\r\n'.repeat(300)),
    );
    await send(bridge, message('middle', 'Middle.\r\n'));
    await send(bridge, message('short', 'Short.\r\n'));
    const requests = await t.api.waitForRequests(3);
    const bySubject = new Map(requests.map(r => [r.body.subject, r.body]));
    expect(bySubject.get('long')?.content).to.equal(
      `<div>${'long line of the first one<br>\n'.repeat(300)}</div>`,
    );
    expect(bySubject.get('middle')?.content).to.equal(
      '<div>Middle.<br>\n</div>',
    );
    expect(bySubject.get('short')?.content).to.equal('<div>Short.<br>\n</div>');
    for (const subject of ['long', 'middle', 'short']) {
      await delivered(bridge, subject);
    }
    // one segment, every message in it done; no file of their own anywhere
    const claims = await claimFolder(bridge.spoolDir);
    expect(claims.segments).to.have.length(1);
    expect(claims.others).to.deep.equal([]);
    expect(await bridge.daemon.spool.ids('active')).to.deep.equal([]);
  });

  it('a message over 128 KiB gets a file of its own in the claim folder; a small one does not', async () => {
    const bridge = await t.start({ api: apiAt(t.api.url) });
    t.api.setDefault({ status: 204, stall: true });
    const large = await send(
      bridge,
      message('large', `${'x'.repeat(998)}\r\n`.repeat(140)),
    );
    const small = await send(bridge, message('small'));
    const claims = await claimFolder(bridge.spoolDir);
    expect(claims.others).to.deep.equal([`${large}.eml`]);
    expect(claims.segments).to.have.length(1);
    expect((await bridge.daemon.spool.ids('active')).sort()).to.deep.equal(
      [large, small].sort(),
    );
    t.api.releaseStalled({ status: 204 });
    t.api.setDefault({ status: 204 });
    await delivered(bridge, 'large');
    await delivered(bridge, 'small');
    expect((await claimFolder(bridge.spoolDir)).others).to.deep.equal([]);
  });

  it('a daemon stopped with messages in its journal: the next start parks them and posts each once', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-journal-'));
    try {
      const config = {
        api: apiAt(t.api.url),
        delivery: { shutdownTimeoutMs: 100 },
      };
      const first = await t.start(config, { spoolDir, keepSpool: true });
      // the API takes nothing: every message stays in the journal, its attempt in flight
      t.api.setDefault({ status: 204, stall: true });
      const ids = [
        await send(first, message('kept-1')),
        await send(first, message('kept-2')),
        await send(first, message('kept-3')),
      ];
      await t.api.waitForRequests(3);
      // as a crash leaves it: the journal closed before the attempts end (their parking
      // fails), so the three stay in it
      first.daemon.spool.close();
      await first.close();
      expect((await claimFolder(spoolDir)).segments).to.have.length(1);

      t.api.releaseStalled({ status: 503 });
      t.api.setDefault({ status: 204 });
      const before = t.api.requests.length;
      const second = await t.start(config, { spoolDir, keepSpool: true });
      for (const n of [1, 2, 3]) await delivered(second, `kept-${n}`);
      const posted = t.api.requests.slice(before).map(r => r.body.ext_msg_id);
      expect(posted.sort()).to.deep.equal([
        '<kept-1@example.net>',
        '<kept-2@example.net>',
        '<kept-3@example.net>',
      ]);
      // parked under their own ids, then delivered: nothing left behind
      const line = await second.waitForLog(
        l => l.message === 'spool recovered after an unclean stop',
      );
      expect(line.requeued).to.equal(3);
      expect(await claimFolder(spoolDir)).to.deep.equal({
        segments: [],
        others: [],
      });
      expect(await second.daemon.spool.ids('queue')).to.deep.equal([]);
      expect(ids).to.have.length(3);
    } finally {
      for (const bridge of t.bridges) await bridge.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });

  it("cluster: the worker that takes over a slot parks the dead worker's journal, and leaves a live worker's alone", async () => {
    const spoolDir = await mkdtemp(
      join(tmpdir(), 'mailbridge-cluster-journal-'),
    );
    // cluster workers as the primary starts them: no recovery (the primary did it), own claims
    const slot = (n: number) => ({
      daemon: { claimDir: `active-${n}`, recover: false, http: false },
      spoolDir,
      keepSpool: true,
    });
    const config = {
      // the stalled POSTs must outlast the test however slow the machine: not 2 s
      api: apiAt(t.api.url, { timeoutMs: 120_000 }),
      delivery: { shutdownTimeoutMs: 100 },
    };
    try {
      const first = await t.start(config, slot(1));
      const other = await t.start(config, slot(2));
      t.api.setDefault({ status: 204, stall: true });
      await send(first, message('slot1'));
      await send(other, message('slot2'));
      await t.api.waitForRequests(2);
      const live = await claimFolder(spoolDir, 'active-2');
      expect(live.segments).to.have.length(1);
      // worker 1 goes away (a kill -9 leaves the same files); the primary starts another in
      // slot 1, which parks what active-1's journal holds
      first.daemon.spool.close();
      await first.close();
      const second = await t.start(config, slot(1));
      await second.waitForLog(
        l =>
          l.message === 'claims of a dead worker requeued' && l.requeued === 1,
      );
      expect((await claimFolder(spoolDir, 'active-1')).segments).to.deep.equal(
        [],
      );
      expect(await claimFolder(spoolDir, 'active-2')).to.deep.equal(live);
      expect(other.daemon.spool.journaled).to.equal(1);
      t.api.releaseStalled({ status: 204 });
      t.api.setDefault({ status: 204 });
      await delivered(second, 'slot1');
      await delivered(other, 'slot2');
    } finally {
      // before their shared spool goes; closing them again after the test does nothing
      for (const bridge of t.bridges) await bridge.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });
});
