// Regression tests from a review: a SIGHUP while cluster workers start (it ended them, and the
// cluster stopped), and LMTP's 552 for a message over the size limit (one per envelope entry,
// not one per accepted RCPT).
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiAt, startBridge, type TestBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import {
  freePort,
  startCli,
  type CliProcess,
} from '../helpers/spawn-daemon.js';
import {
  makeMessage,
  openSession,
  type RawSession,
} from '../helpers/smtp-client.js';
import { waitForLogCount } from '../helpers/wait-for.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

/** The pids of `pid`'s children that run mailbridge (not tsx's esbuild service). */
function workerPids(pid: number): number[] {
  let list: string;
  try {
    list = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    return [];
  }
  return list
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter(child => {
      try {
        return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes(
          'cli.ts',
        );
      } catch {
        return false;
      }
    });
}

/**
 * Resolves with the pid of a new worker the moment the primary has forked it. A fork has no
 * event the test can hear, so /proc is looked at every 2 ms, for at most `timeoutMs`.
 */
async function forkedWorker(
  primary: number,
  known: Set<number>,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = workerPids(primary).find(p => !known.has(p));
    if (pid !== undefined) return pid;
    if (Date.now() > deadline) throw new Error('no worker was forked');
    await new Promise(done => setTimeout(done, 2));
  }
}

describe('SIGHUP in a cluster, LMTP and the size limit', () => {
  describe('SIGHUP while a cluster worker is starting', () => {
    let dir: string;
    let daemon: CliProcess | undefined;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'mailbridge-review-'));
      copyFileSync(join(FIXTURES, 'localhost.key'), join(dir, 'tls.key'));
      copyFileSync(join(FIXTURES, 'localhost.crt'), join(dir, 'tls.crt'));
    });
    afterEach(async () => {
      await daemon?.kill();
      daemon = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    async function startCluster(): Promise<CliProcess> {
      daemon = startCli(['serve'], {
        MAILBRIDGE_CLUSTER_WORKERS: '2',
        MAILBRIDGE_SMTP_PORT: String(await freePort()),
        MAILBRIDGE_HTTP_PORT: String(await freePort()),
        MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
        MAILBRIDGE_SMTP_TLS_KEY: join(dir, 'tls.key'),
        MAILBRIDGE_SMTP_TLS_CERT: join(dir, 'tls.crt'),
        MAILBRIDGE_LOG_LEVEL: 'info',
      });
      return daemon;
    }

    it('a SIGHUP (systemctl reload) during the start does not stop the cluster', async function () {
      this.timeout(30_000);
      const cli = await startCluster();
      // the primary forwards it to a worker that has not yet installed a SIGHUP handler
      await forkedWorker(cli.child.pid!, new Set(), 15_000);
      cli.child.kill('SIGHUP');
      await cli.waitForLog('mailbridge started');
      cli.child.kill('SIGTERM');
      expect(await cli.exited).to.deep.equal({ code: 0, signal: null });
    });

    it('a SIGHUP while a replacement worker starts does not bring the cluster down', async function () {
      this.timeout(30_000);
      const cli = await startCluster();
      await cli.waitForLog('mailbridge started');
      await waitForLogCount(cli, 'worker started', 2, 15_000);
      const pids = cli.logs
        .filter(l => l.message === 'worker started')
        .map(l => Number(l.pid));
      process.kill(pids[0]!, 'SIGKILL');
      await cli.waitForLog('worker died; starting another');
      await forkedWorker(cli.child.pid!, new Set(pids), 15_000);
      // a certificate renewed at this moment: the reload reaches the replacement mid-start
      cli.child.kill('SIGHUP');
      await waitForLogCount(cli, 'worker started', 3, 15_000);
      cli.child.kill('SIGTERM');
      expect(await cli.exited).to.deep.equal({ code: 0, signal: null });
    });
  });

  describe('LMTP, a recipient given twice and a message over smtp.maxMessageSize', () => {
    let api: FakeApi;
    let bridge: TestBridge | undefined;
    const sessions: RawSession[] = [];
    beforeEach(async () => {
      api = await startFakeApi();
    });
    afterEach(async () => {
      for (const session of sessions.splice(0)) session.socket.destroy();
      await bridge?.close();
      bridge = undefined;
      await api.close();
    });

    it('gets one 552 per accepted RCPT command, not one per envelope entry', async () => {
      bridge = await startBridge({
        delivery: { mode: 'queue' },
        api: apiAt(api.url),
        routes: [{ match: 'support@example.com', mailbox_id: 'mb-support' }],
        smtp: { lmtp: true, maxMessageSize: 1000 },
      });
      const session = await openSession(bridge.smtpPort);
      sessions.push(session);
      session.socket.write(
        'LHLO client.example.net\r\nMAIL FROM:<jane@example.net>\r\n' +
          'RCPT TO:<support@example.com>\r\nRCPT TO:<SUPPORT@example.com>\r\nDATA\r\n',
      );
      await session.waitFor(/^354 /m);
      // MAIL and two RCPTs answered 250
      expect(
        session.replies().match(/^250 \d\.\d\.\d Accepted\r?$/gm),
      ).to.have.length(3);
      session.clear();
      const big = makeMessage(
        { From: 'jane@example.net', Subject: 'too big' },
        ('y'.repeat(70) + '\r\n').repeat(40),
      );
      session.socket.write(`${big}.\r\nNOOP\r\n`);
      await session.waitFor(/^250 2\.0\.0 OK\r\n/m);
      const lines: string[] = session.replies().match(/^\d{3} .*$/gm) ?? [];
      // two replies owed after the dot, before the NOOP's; with one, an LMTP client takes the
      // NOOP's 250 for the second recipient's (or waits for it until it times out)
      const owed = lines.slice(0, lines.lastIndexOf('250 2.0.0 OK'));
      expect(owed, owed.join(' | ')).to.have.length(2);
      expect(owed.every(l => l.startsWith('552 '))).to.equal(true);
    });
  });
});
