// The free pool in a cluster: each worker slot has its own free/<claim folder>/, and the worker
// that takes over a slot empties what the dead one left there, without touching a live worker's
// pool. Regression (review): with one shared free/, a dead worker's files stayed until restart.
import { expect } from 'chai';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

/** Every file in the spool (relative paths), but the dedupe store's. */
async function spoolFiles(dir: string, under = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, under), {
    withFileTypes: true,
  })) {
    const path = under ? `${under}/${entry.name}` : entry.name;
    if (!entry.isDirectory()) out.push(path);
    else if (path !== 'dedupe') out.push(...(await spoolFiles(dir, path)));
  }
  return out.sort();
}

describe('cluster: the free pool of a worker slot', function () {
  this.timeout(20_000);
  const t = useBridge();

  async function send(port: number, n: number) {
    const result = await sendRaw({
      port,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'jane@example.net',
        To: 'support@example.com',
        Subject: `pool ${n}`,
        'Message-ID': `<pool-${n}@example.net>`,
      }),
    });
    expect(result.code).to.equal(250);
  }

  async function delivered(bridge: TestBridge, n: number): Promise<void> {
    await bridge.waitForLog(
      l =>
        l.message === 'message delivered' &&
        l.messageId === `<pool-${n}@example.net>`,
    );
  }

  it('cluster: the free files of a worker that died are neither taken over nor removed by its replacement', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-cluster-pool-'));
    // cluster workers as the primary starts them: no recovery (the primary did it), own claims
    const slot = (n: number) => ({
      daemon: { claimDir: `active-${n}`, recover: false, http: false },
      spoolDir,
      keepSpool: true,
    });
    try {
      const first = await t.start({ api: apiAt(t.api.url) }, slot(1));
      const other = await t.start({ api: apiAt(t.api.url) }, slot(2));
      await send(other.smtpPort, 1);
      await delivered(other, 1);
      // worker 2's pool: one file, which must stay usable whatever happens to worker 1
      const othersFiles = await spoolFiles(spoolDir);
      expect(othersFiles).to.have.length(1);
      await send(first.smtpPort, 2);
      await delivered(first, 2);
      expect(first.daemon.spool.freeFiles).to.equal(1);
      expect(other.daemon.spool.freeFiles).to.equal(1);
      // worker 1 goes away (a kill -9 leaves the same files); the primary starts another in
      // slot 1, which requeues the claims of active-1 and empties free/active-1/
      await first.close();
      const second = await t.start({ api: apiAt(t.api.url) }, slot(1));
      await send(second.smtpPort, 3);
      await delivered(second, 3);
      expect(await spoolFiles(spoolDir)).to.include(othersFiles[0]);
      // all delivered: what is left should be the live workers' pools, no more
      const live = second.daemon.spool.freeFiles + other.daemon.spool.freeFiles;
      expect(
        await spoolFiles(spoolDir),
        'files in the spool that no live process will use or remove',
      ).to.have.length(live);
    } finally {
      // before their shared spool goes; closing them again after the test does nothing
      for (const bridge of t.bridges) await bridge.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });
});
