// The README's quick start, pasted as a newcomer would: its commands run as written (only the
// SMTP port is the test's own), the first message gives a body with a mailbox, the files named
// ship.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/run-cli.js';
import { sendRaw } from '../helpers/smtp-client.js';
import { startCli, type CliProcess } from '../helpers/spawn-daemon.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The ```sh blocks of the README between two headings, each as one string. */
async function shellBlocks(from: string, to: string): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(from), readme.indexOf(to));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map(m => m[1]!);
}

/** The block that contains `needle`. */
function blockWith(blocks: string[], needle: string): string {
  const block = blocks.find(b => b.includes(needle));
  if (!block) throw new Error(`no README block with ${needle}`);
  return block;
}

/** A shell command run in `cwd`; resolves with its exit status and output. */
function sh(
  command: string,
  cwd: string,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((done, fail) => {
    const child = spawn('sh', ['-c', command], {
      cwd,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.once('error', fail);
    child.once('close', code => done({ code, stdout }));
  });
}

/** A README command line `npx mailbridge ARGS` as the argument list. */
function npxArgs(block: string, command: string): string[] {
  const line = block
    .split('\n')
    .find(l => l.startsWith(`npx mailbridge ${command} `));
  if (!line) throw new Error(`no "npx mailbridge ${command}" line`);
  return line.split(/\s+/).slice(2);
}

describe('deploy: the README quick start', function () {
  this.timeout(60_000);
  let blocks: string[];
  let dir: string;
  let daemon: CliProcess | undefined;

  before(async () => {
    blocks = await shellBlocks('## Quick start', '### Post to the API');
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mb-door-'));
    // the README's paths are relative to the checkout: examples/ as there
    await symlink(join(ROOT, 'examples'), join(dir, 'examples'));
  });
  afterEach(async () => {
    await daemon?.kill();
    daemon = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('names only files that ship', () => {
    const named = blocks.join('\n').match(/examples\/[\w.-]+/g) ?? [];
    expect(named).to.include('examples/hello.eml');
    for (const path of named) {
      expect(existsSync(join(ROOT, path)), path).to.equal(true);
    }
  });

  it('starts with npm start and the example configuration', () => {
    expect(blocks[0]!.trim()).to.equal(
      'npm ci && npm start -- --config examples/mailbridge.yaml',
    );
  });

  it('first message: swaks, then the waiting cat shows a body with its mailbox', async () => {
    const config = blocks[0]!.trim().split(' -- ')[1]!.split(/\s+/);
    daemon = startCli(['serve', ...config], {
      MAILBRIDGE_SMTP_PORT: '0',
      MAILBRIDGE_SPOOL_DIR: join(dir, 'var/spool'),
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    const started = await daemon.waitForLog('mailbridge started');
    const port = Number(String(started.smtp).split(':').pop());
    const swaks = blockWith(blocks, '--body');
    if (spawnSync('swaks', ['--version'], { stdio: 'ignore' }).status === 0) {
      const sent = await sh(
        swaks.replaceAll('127.0.0.1:2525', `127.0.0.1:${port}`),
        dir,
      );
      expect(sent.code).to.equal(0);
      expect(sent.stdout).to.match(/250 2\.6\.0 OK: queued as/);
    } else {
      // no swaks here: the same envelope and headers from the test's client
      console.log('      (swaks is not installed: sent with nodemailer)');
      await sendRaw({
        port,
        from: 'jane@example.net',
        to: ['support@example.com'],
        raw: 'Subject: My printer is on fire\r\n\r\nPlease help.\r\n',
      });
    }
    // the README's next command, exactly: it waits for the asynchronous delivery
    const shown = await sh(blockWith(blocks, 'until grep').trim(), dir);
    expect(shown.code).to.equal(0);
    const body = JSON.parse(shown.stdout) as Record<string, unknown>;
    expect(body).to.include({
      from: 'jane@example.net',
      to: 'support@example.com',
      subject: 'My printer is on fire',
      mailbox_id: 'mb-support',
    });
  });

  it('preview of the example message: its body, attachment and mailbox', async () => {
    const args = npxArgs(blocks.join('\n'), 'preview');
    const result = await runCli(args);
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    const body = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(body).to.deep.include({
      from: 'jane@example.net',
      subject: 'My printer is on fire',
      ext_msg_id: '<hello-1@example.net>',
      mailbox_id: 'mb-support',
    });
    expect(
      (body.attachments as Array<{ name: string }>).map(a => a.name),
    ).to.deep.equal(['printer-log.txt']);
  });

  it('inject of the example message spools it', async () => {
    const args = npxArgs(blocks.join('\n'), 'inject');
    const result = await runCli(args, {
      MAILBRIDGE_SPOOL_DIR: join(dir, 'var/spool'),
    });
    expect(result.code).to.equal(0);
    expect(result.stdout).to.match(/^queued as \S+/);
  });
});
