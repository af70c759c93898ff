// Mail at rest: under a umask of 022 (a shell's usual one), every folder the daemon makes under
// spool.dir is 0700 and every file it writes 0600 (queue, journal, msg, dead, held, dry-run,
// dedupe log, pid file, tmp, the queue commands' writes); a spool made looser is tightened.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { attachmentPart, multipartMessage, textPart } from '../helpers/mime.js';
import { runCli } from '../helpers/run-cli.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

const OUT_OF_OFFICE = readFileSync(
  new URL(
    '../fixtures/corpus/auto-replies/sisimai-rfc3834-03.eml',
    import.meta.url,
  ),
);

/** Every folder and file under `dir` (itself included), with its permission bits. */
async function modes(dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const walk = async (path: string): Promise<void> => {
    // the running daemon moves files while we look: one gone since its folder was read is skipped
    const info = await lstat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!info) return;
    const kind = info.isDirectory() ? 'dir' : 'file';
    found.set(
      `${kind} ${relative(dir, path) || '.'}`,
      (info.mode & 0o777).toString(8),
    );
    if (!info.isDirectory()) return;
    for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(dir);
  return found;
}

/** The entries whose mode is not 700 (folders) or 600 (files). */
function loose(found: Map<string, string>): string[] {
  return [...found]
    .filter(([what, mode]) => mode !== (what.startsWith('dir') ? '700' : '600'))
    .map(([what, mode]) => `${what} ${mode}`);
}

describe('spool modes: mail at rest is the owner’s alone', () => {
  const t = useBridge();
  let umask: number;
  let parent: string;

  beforeEach(async () => {
    umask = process.umask(0o022);
    parent = await mkdtemp(join(tmpdir(), 'mailbridge-modes-'));
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(parent, { recursive: true, force: true });
  });

  async function send(bridge: TestBridge, to: string, raw: string | Buffer) {
    const sent = await sendRaw({ port: bridge.smtpPort, to: [to], raw });
    expect(sent.code, sent.response).to.equal(250);
  }

  it('queue mode: queue, journal, msg, dead, held, dedupe log, tmp and the commands’ files', async () => {
    t.api.respondWith(request => {
      const mailbox = (request.body as { mailbox_id?: string }).mailbox_id;
      if (mailbox === 'mb-dead') return { status: 400 };
      if (mailbox === 'mb-wait') return { status: 503 };
      // the large one waits, its attachment decoded in tmp/, until the files are looked at
      if (mailbox === 'mb-large') return { status: 204, stall: true };
      return undefined;
    });
    // spool.dir does not exist yet: the daemon makes it
    const bridge = await t.start(
      {
        api: apiAt(t.api.url, { timeoutMs: 600_000 }),
        delivery: {
          scanIntervalMs: 50,
          retry: { initialDelayMs: 600_000 },
        },
        routes: [
          { match: 'ok@example.com', mailbox_id: 'mb-ok' },
          { match: 'large@example.com', mailbox_id: 'mb-large' },
          { match: 'dead@example.com', mailbox_id: 'mb-dead' },
          { match: 'wait@example.com', mailbox_id: 'mb-wait' },
          { match: 'support@example.com', mailbox_id: 'mb-support' },
        ],
      },
      { spoolDir: join(parent, 'spool'), keepSpool: true },
    );
    // small (journaled) and large (a file of its own, its attachment decoded to tmp/)
    await send(bridge, 'ok@example.com', makeMessage({ Subject: 'small' }));
    await send(
      bridge,
      'large@example.com',
      multipartMessage({ Subject: 'large', 'Message-ID': '<large@test>' }, [
        textPart('see the file'),
        attachmentPart('data.bin', Buffer.alloc(300 * 1024, 7)),
      ]),
    );
    await t.api.waitForRequests(2);
    const posting = await modes(bridge.spoolDir);
    expect(
      [...posting.keys()].filter(k => k.startsWith('file tmp/')),
      'attachment files in tmp/',
    ).not.to.deep.equal([]);
    expect(loose(posting)).to.deep.equal([]);
    t.api.releaseStalled();
    await send(bridge, 'dead@example.com', makeMessage({ Subject: 'dead' }));
    await send(bridge, 'wait@example.com', makeMessage({ Subject: 'wait' }));
    await send(bridge, 'support@example.com', OUT_OF_OFFICE);
    const delivered = () =>
      bridge.logs.filter(l => l.message === 'message delivered').length;
    await bridge.waitForLog(() => delivered() === 2);
    await bridge.waitForLog(l => l.message === 'message dead');
    await bridge.waitForLog(l => l.message === 'message held');
    const waiting = await bridge.waitForLog(
      l => l.message === 'delivery deferred',
    );
    const found = await modes(bridge.spoolDir);
    for (const folder of ['.', 'queue', 'msg', 'dead', 'held', 'tmp']) {
      expect(found.get(`dir ${folder}`), folder).to.equal('700');
    }
    const files = [...found.keys()].filter(k => k.startsWith('file'));
    for (const room of ['queue/', 'msg/', 'dead/', 'held/', 'active/']) {
      expect(
        files.some(f => f.startsWith(`file ${room}`)),
        room,
      ).to.equal(true);
    }
    expect(loose(found)).to.deep.equal([]);
    // the queue commands run with the same umask: `inject` spools, `retry` signals
    const env = {
      MAILBRIDGE_SPOOL_DIR: bridge.spoolDir,
      MAILBRIDGE_API_TOKEN: 'test-token-123',
    };
    const eml = join(parent, 'injected.eml');
    await writeFile(eml, makeMessage({ Subject: 'injected' }));
    const injected = await runCli(
      ['inject', eml, '--rcpt', 'wait@example.com'],
      env,
    );
    expect(injected.code, injected.stderr).to.equal(0);
    const retried = await runCli(
      ['queue', 'retry', String(waiting.queueId)],
      env,
    );
    expect(retried.code, retried.stderr).to.equal(0);
    expect(loose(await modes(bridge.spoolDir))).to.deep.equal([]);
    // and once the daemon has stopped (its journal and dedupe log written out)
    await bridge.close();
    const after = await modes(bridge.spoolDir);
    const kept = [...after.keys()];
    expect(
      kept.some(f => f.startsWith('file dedupe/')),
      'dedupe',
    ).to.equal(true);
    expect(loose(after)).to.deep.equal([]);
  });

  it('dry-run: the dry-run folder and the bodies in it', async () => {
    const bridge = await t.start(
      { routes: [{ match: 'ok@example.com', mailbox_id: 'mb-ok' }] },
      { spoolDir: join(parent, 'spool'), keepSpool: true },
    );
    await send(bridge, 'ok@example.com', makeMessage({ Subject: 'dry' }));
    await bridge.waitForLog(
      l => l.message === 'dry-run: payload not posted (no api.token)',
    );
    const found = await modes(bridge.spoolDir);
    expect(found.get('dir dry-run')).to.equal('700');
    expect([...found.keys()].some(k => k.startsWith('file dry-run/'))).to.equal(
      true,
    );
    expect(loose(found)).to.deep.equal([]);
    await bridge.close();
    expect(loose(await modes(bridge.spoolDir))).to.deep.equal([]);
  });

  it('a spool made with looser folders is tightened at start', async () => {
    const spoolDir = join(parent, 'spool');
    for (const folder of ['', 'queue', 'msg', 'dedupe', 'dry-run']) {
      await mkdir(join(spoolDir, folder), { recursive: true });
      await chmod(join(spoolDir, folder), 0o755);
    }
    const bridge = await t.start(
      { api: apiAt(t.api.url) },
      { spoolDir, keepSpool: true },
    );
    const found = await modes(spoolDir);
    const folders = [...found].filter(([k]) => k.startsWith('dir'));
    expect(folders.filter(([, mode]) => mode !== '700')).to.deep.equal([]);
    expect(found.get('dir dedupe')).to.equal('700');
    await bridge.close();
  });
});
