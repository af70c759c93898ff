// The Exim recipe (deploy/exim/exim.conf, docs/exim.md) checked by Exim itself: the file is
// valid, routes the helpdesk domain to mailbridge, and asks a real mailbridge at RCPT time
// (a fake SMTP session, exim -bhc: the ACLs and the callout run, nothing is queued).
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBridge, type TestBridge } from '../helpers/bridge.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONF = join(ROOT, 'deploy/exim/exim.conf');

/** Why Exim cannot check the file here, or null. */
function eximUnavailable(): string | null {
  const run = spawnSync('exim', ['-bV'], { encoding: 'utf8' });
  if (run.error) return 'exim is not installed (Debian: exim4-daemon-light)';
  // another configuration file (-C) is Exim's root's privilege, unless listed at build time
  if (process.getuid?.() !== 0) return 'exim -C FILE needs root';
  return null;
}

/** exim -C CONF ...args with `input` on stdin; its status, stdout and stderr. */
function exim(
  args: string[],
  input = '',
  conf = CONF,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn('exim', ['-C', conf, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', fail);
    child.once('close', code => done({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('deploy: the Exim recipe', function () {
  this.timeout(30_000);
  let bridge: TestBridge | undefined;

  before(function () {
    const why = eximUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
  });
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });

  it('is a valid configuration (exim -bV)', async () => {
    const run = await exim(['-bV']);
    expect(run.stderr).to.equal('');
    expect(run.code).to.equal(0);
    expect(run.stdout).to.include(`Configuration file is ${CONF}`);
  });

  it('routes the helpdesk domain to mailbridge, other domains by DNS (exim -bt)', async () => {
    const run = await exim(['-bt', 'support@help.example.com']);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.include(
      'router = mailbridge, transport = mailbridge_smtp',
    );
    expect(run.stdout).to.include('host 127.0.0.1 [127.0.0.1]');
  });

  it('asks mailbridge at RCPT: its 550 reaches the client, nothing bounces later', async () => {
    bridge = await startBridge({
      routes: [{ match: 'support@help.example.com', mailbox_id: 'mb-support' }],
    } as Parameters<typeof startBridge>[0]);
    const dialogue = [
      'EHLO client.example',
      'MAIL FROM:<jane@example.net>',
      'RCPT TO:<support@help.example.com>',
      'RCPT TO:<nobody@help.example.com>',
      'RCPT TO:<someone@elsewhere.example>',
      'QUIT',
      '',
    ].join('\r\n');
    // the test's port; no_cache: leave the machine's callout cache alone
    const run = await exim(
      [
        `-DMAILBRIDGE_PORT=${bridge.smtpPort}`,
        '-DCALLOUT=10s,defer_ok,no_cache',
        '-bhc',
        '192.0.2.1',
      ],
      dialogue,
    );
    // Exim's replies to the client: the last line of each
    const finals = run.stdout
      .split(/\r?\n/)
      .filter(line => /^\d{3} /.test(line));
    expect(finals[0]).to.match(/^220 /);
    const [accepted, refused, relay] = finals.slice(3, 6);
    expect(accepted).to.equal('250 Accepted');
    // mailbridge's own refusal (5.1.1: no route), passed on by the callout
    expect(run.stdout).to.include('550-Callout verification failed:');
    expect(refused).to.match(/^550 550 5\.1\.1 /);
    expect(relay).to.equal('550 relay not permitted');
    expect(finals.at(-1)).to.match(/^221 /);
  });

  it("delivers through Exim: mailbridge's 250 reaches Exim, nothing stays queued", async () => {
    bridge = await startBridge({
      routes: [{ match: 'support@help.example.com', mailbox_id: 'mb-support' }],
    } as Parameters<typeof startBridge>[0]);
    // Exim's spool and logs in a folder of the test's, not the machine's
    const dir = await mkdtemp(join(tmpdir(), 'mb-exim-'));
    try {
      await chmod(dir, 0o755);
      const user = /exim_user = (\S+)/.exec(
        spawnSync('exim', ['-bP', 'exim_user'], { encoding: 'utf8' }).stdout,
      )?.[1];
      const uid = Number(
        spawnSync('id', ['-u', user ?? 'Debian-exim'], { encoding: 'utf8' })
          .stdout,
      );
      await mkdir(join(dir, 'log'));
      await chown(join(dir, 'log'), uid, 0);
      const conf = join(dir, 'exim.conf');
      await writeFile(
        conf,
        `spool_directory = ${dir}/spool\nlog_file_path = ${dir}/log/%s.log\n` +
          (await readFile(CONF, 'utf8')),
      );
      const message = await readFile(join(ROOT, 'examples/hello.eml'));
      // -odf: deliver now, in the foreground
      const run = await exim(
        [
          `-DMAILBRIDGE_PORT=${bridge.smtpPort}`,
          '-odf',
          '-oi',
          '-f',
          'jane@example.net',
          'support@help.example.com',
        ],
        message.toString('latin1'),
        conf,
      );
      expect(run.code).to.equal(0);
      const log = await readFile(join(dir, 'log/main.log'), 'utf8');
      // pipelining QUIT after the dot (Exim does) made mailbridge close before its 250:
      // Exim deferred a message mailbridge had queued, and would send it again
      expect(log).not.to.include('defer');
      expect(log).to.match(
        /=> support@help\.example\.com R=mailbridge T=mailbridge_smtp .* C="250 2\.6\.0 OK: queued as /,
      );
      expect(log).to.include(' Completed');
      await bridge.waitForLog(
        line =>
          line.message === 'message queued' &&
          line.messageId === '<hello-1@example.net>',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
