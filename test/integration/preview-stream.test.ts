// `preview` streams each body to stdout: a large attachment in full, and no attachment file left.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/run-cli.js';
import { makeMessage } from '../helpers/smtp-client.js';

const ROUTES_YAML = `routes:
  - match: support@example.com
    mailbox_id: mb-support
  - match: billing@example.com
    mailbox_id: mb-billing
`;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('preview: streamed bodies', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-preview-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints one line per route with a 1 MiB attachment in full, and removes its file', async () => {
    const bytes = Buffer.alloc(1024 * 1024 + 1);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 13) % 251;
    const eml = join(dir, 'big.eml');
    await writeFile(
      eml,
      makeMessage(
        {
          From: 'jane@example.net',
          To: 'support@example.com, billing@example.com',
          Subject: 'Grüße "big"',
          'Message-ID': '<big@example.net>',
          'MIME-Version': '1.0',
          'Content-Type': 'multipart/mixed; boundary="b"',
        },
        [
          '--b',
          'Content-Type: text/plain',
          '',
          'Attached.',
          '--b',
          'Content-Type: application/octet-stream; name="big.bin"',
          'Content-Transfer-Encoding: base64',
          '',
          (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n'),
          '--b--',
          '',
        ].join('\r\n'),
      ),
    );
    const config = join(dir, 'routes.yaml');
    await writeFile(config, ROUTES_YAML);
    // the attachment files go to os.tmpdir(): here a folder of this test's own
    const scratch = join(dir, 'scratch');
    await mkdir(scratch);

    const result = await runCli(['preview', eml, '--config', config], {
      TMPDIR: scratch,
    });
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    const lines = result.stdout.split('\n');
    expect(lines.pop()).to.equal('');
    const bodies = lines.map(
      line =>
        JSON.parse(line) as {
          subject: string;
          mailbox_id: string;
          attachments: Array<{ name: string; file: string }>;
        },
    );
    expect(bodies.map(b => b.mailbox_id)).to.deep.equal([
      'mb-support',
      'mb-billing',
    ]);
    for (const [i, body] of bodies.entries()) {
      // each line is exactly what JSON.stringify gives for the body
      expect(lines[i] === JSON.stringify(body)).to.equal(true);
      expect(body.subject).to.equal('Grüße "big"');
      expect(body.attachments.map(a => a.name)).to.deep.equal(['big.bin']);
      expect(sha256(Buffer.from(body.attachments[0]!.file, 'base64'))).to.equal(
        sha256(bytes),
      );
    }
    // (tsx keeps its cache there too)
    const left = await readdir(scratch);
    expect(left.filter(name => name.startsWith('att-'))).to.deep.equal([]);
  });

  // regression: `preview ... | head` crashed with an EPIPE stack trace once head had enough
  it('stops quietly (exit 0) when the reader closes the pipe early', async () => {
    const eml = join(dir, 'wide.eml');
    const blob = Buffer.alloc(2 * 1024 * 1024, 7).toString('base64');
    await writeFile(
      eml,
      makeMessage(
        {
          From: 'jane@example.net',
          To: 'support@example.com',
          'Content-Type': 'multipart/mixed; boundary="b"',
        },
        [
          '--b',
          'Content-Type: text/plain',
          '',
          'Attached.',
          '--b',
          'Content-Type: application/octet-stream; name="wide.bin"',
          'Content-Transfer-Encoding: base64',
          '',
          (blob.match(/.{1,76}/g) ?? []).join('\r\n'),
          '--b--',
          '',
        ].join('\r\n'),
      ),
    );
    const config = join(dir, 'routes.yaml');
    await writeFile(config, ROUTES_YAML);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'preview', eml, '--config', config],
      {
        cwd: fileURLToPath(new URL('../../', import.meta.url)),
        env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', TMPDIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    await once(child.stdout, 'data');
    child.stdout.destroy(); // like `head -c 100` exiting
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(stderr).to.equal('');
    expect(code).to.equal(0);
  });
});
