// A renewed TLS certificate without a restart: Daemon.reloadTls(), and SIGHUP on a real
// `serve` process and cluster, while it starts too (a SIGHUP then used to end the workers that
// had no handler yet, and the cluster stopped). The files are swapped in place, as a
// certificate tool renews them.
import { expect } from 'chai';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { apiAt, useBridge } from '../helpers/bridge.js';
import {
  freePort,
  startCli,
  type CliProcess,
} from '../helpers/spawn-daemon.js';
import { waitForLogCount } from '../helpers/wait-for.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const CA = [
  readFileSync(join(FIXTURES, 'localhost.crt')),
  readFileSync(join(FIXTURES, 'renewed.crt')),
];

/** The SHA-256 fingerprint of the certificate a new implicit-TLS session is shown. */
async function servedFingerprint(port: number): Promise<string> {
  const socket = tlsConnect({
    port,
    host: '127.0.0.1',
    ca: CA,
    servername: 'localhost',
  });
  await once(socket, 'secureConnect');
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fingerprint;
}

/** The fingerprint of a fixture certificate, in the form a TLS session shows it. */
function fingerprintOf(name: string): string {
  return new X509Certificate(readFileSync(join(FIXTURES, name))).fingerprint256;
}

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

describe('TLS certificate reload', () => {
  let dir: string;
  let key: string;
  let cert: string;

  /** Puts a fixture pair where the daemon reads its key and certificate. */
  function install(name: 'localhost' | 'renewed'): void {
    copyFileSync(join(FIXTURES, `${name}.key`), key);
    copyFileSync(join(FIXTURES, `${name}.crt`), cert);
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailbridge-tls-reload-'));
    key = join(dir, 'tls.key');
    cert = join(dir, 'tls.crt');
    install('localhost');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('Daemon.reloadTls', () => {
    const t = useBridge();

    beforeEach(async () => {
      await t.start({
        api: apiAt(t.api.url),
        smtp: { tls: { key, cert, implicit: true } },
      });
    });

    it('serves the renewed certificate to the sessions that start after it', async () => {
      const first = fingerprintOf('localhost.crt');
      const renewed = fingerprintOf('renewed.crt');
      expect(first).to.not.equal(renewed);
      expect(await servedFingerprint(t.bridge.smtpPort)).to.equal(first);
      install('renewed');
      // not before it is told
      expect(await servedFingerprint(t.bridge.smtpPort)).to.equal(first);
      expect(t.bridge.daemon.reloadTls()).to.equal(true);
      expect(await servedFingerprint(t.bridge.smtpPort)).to.equal(renewed);
      const logged = await t.bridge.waitForLog(
        l => l.message === 'TLS certificate reloaded',
      );
      expect(logged).to.include({ level: 'info', cert });
    });

    it('keeps the certificate in use when the new files cannot be used', async () => {
      const first = fingerprintOf('localhost.crt');
      // a renewal caught half way: the new key next to the old certificate
      copyFileSync(join(FIXTURES, 'renewed.key'), key);
      expect(t.bridge.daemon.reloadTls()).to.equal(false);
      writeFileSync(cert, 'not a certificate\n');
      expect(t.bridge.daemon.reloadTls()).to.equal(false);
      expect(await servedFingerprint(t.bridge.smtpPort)).to.equal(first);
      const failed = t.bridge.logs.filter(
        l => l.message === 'TLS certificate not reloaded; the one in use stays',
      );
      expect(failed.map(l => l.level)).to.deep.equal(['error', 'error']);
      expect(String(failed[0]?.error)).to.match(
        /^smtp\.tls: the key and certificate cannot be used/,
      );
    });
  });

  describe('SIGHUP on a real process', () => {
    let daemon: CliProcess | undefined;
    afterEach(async () => {
      await daemon?.kill();
      daemon = undefined;
    });

    /** `serve` with the key and certificate above, as one process or a cluster of `workers`. */
    async function serve(workers: number): Promise<CliProcess> {
      return startCli(['serve'], {
        MAILBRIDGE_CLUSTER_WORKERS: String(workers),
        MAILBRIDGE_SMTP_PORT: String(await freePort()),
        MAILBRIDGE_HTTP_PORT: String(await freePort()),
        MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
        MAILBRIDGE_SMTP_TLS_KEY: key,
        MAILBRIDGE_SMTP_TLS_CERT: cert,
        MAILBRIDGE_LOG_LEVEL: 'info',
      });
    }

    it('reloads the certificate and keeps running (Node would exit on SIGHUP by default)', async () => {
      daemon = await serve(1);
      await daemon.waitForLog('mailbridge started');
      install('renewed');
      daemon.child.kill('SIGHUP');
      await daemon.waitForLog('TLS certificate reloaded');
      // still running, and it exits cleanly when asked
      expect(daemon.child.exitCode).to.equal(null);
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).to.deep.equal({ code: 0, signal: null });
    });

    it('a cluster primary passes SIGHUP to every worker', async function () {
      this.timeout(30_000);
      daemon = await serve(2);
      await daemon.waitForLog('mailbridge started');
      install('renewed');
      daemon.child.kill('SIGHUP');
      await waitForLogCount(daemon, 'TLS certificate reloaded', 2, 15_000);
      const workers = daemon.logs.filter(l => l.message === 'worker started');
      const reloaded = daemon.logs.filter(
        l => l.message === 'TLS certificate reloaded',
      );
      expect(new Set(reloaded.map(l => l.pid))).to.deep.equal(
        new Set(workers.map(l => l.pid)),
      );
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).to.deep.equal({ code: 0, signal: null });
    });

    it('a SIGHUP (systemctl reload) during the start does not stop the cluster', async function () {
      this.timeout(30_000);
      const cli = (daemon = await serve(2));
      // the primary forwards it to a worker that has not yet installed a SIGHUP handler
      await forkedWorker(cli.child.pid!, new Set(), 15_000);
      cli.child.kill('SIGHUP');
      await cli.waitForLog('mailbridge started');
      cli.child.kill('SIGTERM');
      expect(await cli.exited).to.deep.equal({ code: 0, signal: null });
    });

    it('a SIGHUP while a replacement worker starts does not bring the cluster down', async function () {
      this.timeout(30_000);
      const cli = (daemon = await serve(2));
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
});
