// Regression (review): a short write of a small message's file (the disk or the file size limit running out
// mid-write) must not be answered 250 with a truncated message in the spool.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSegmentName } from '../../src/spool/journal.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';
import { freePort } from '../helpers/spawn-daemon.js';
import { segmentIfAny, waitFor } from '../helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** RLIMIT_FSIZE of the child in KiB: a write past it is cut short (node ignores SIGXFSZ). */
const FILE_LIMIT_KIB = 64;

/** A message of about 100 KiB (under the 128 KiB one-write path) that ends with a marker. */
function bigMessage(marker: string): string {
  const line = `${'x'.repeat(76)}\r\n`;
  return makeMessage(
    {
      From: 'jane@example.net',
      To: 'support@example.com',
      Subject: 'partial write',
      'Message-ID': '<partial-write@example.net>',
    },
    `${line.repeat(1300)}${marker}\r\n`,
  );
}

/** `mailbridge ...args` under `ulimit -f FILE_LIMIT_KIB`, with a clean environment. */
function cliUnderFileLimit(
  args: string[],
  env: Record<string, string>,
): ChildProcess {
  return spawn(
    'bash',
    [
      '-c',
      `ulimit -f ${FILE_LIMIT_KIB}; exec "$0" "$@"`,
      process.execPath,
      '--import',
      'tsx',
      'src/cli.ts',
      ...args,
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

describe('a short write of a small message', function () {
  this.timeout(30_000);

  let dir: string;
  let api: FakeApi;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-review-pw-'));
    api = await startFakeApi();
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'close');
    }
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('SMTP: a 250 for a message cut short on disk delivers it whole (or it is refused)', async () => {
    const marker = 'END-OF-MESSAGE-MARKER';
    const smtpPort = await freePort();
    const configFile = join(dir, 'pw.yaml');
    await writeFile(
      configFile,
      'delivery:\n  mode: queue\n  scanIntervalMs: 100\n  retry:\n    initialDelayMs: 20\n    maxDelayMs: 100\n',
    );
    child = cliUnderFileLimit(['serve', '--config', configFile], {
      MAILBRIDGE_SMTP_PORT: String(smtpPort),
      MAILBRIDGE_HTTP_PORT: String(await freePort()),
      MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
      MAILBRIDGE_API_URL: api.url,
      MAILBRIDGE_API_TOKEN: 'review-token',
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    api.reply({ status: 503 });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    await waitFor(
      () => stdout.includes('"mailbridge started"'),
      [[child.stdout!, 'data']],
      { timeoutMs: 15_000, what: 'the daemon to start' },
    );

    const sent = await sendRaw({
      port: smtpPort,
      to: ['support@example.com'],
      raw: bigMessage(marker),
    });
    if (sent.code === 250) {
      // the first attempt (from the bytes in memory) is deferred; the retry reads the spool
      await waitFor(() => api.requests.length >= 2, [[api, 'request']], {
        timeoutMs: 10_000,
        what: 'the retried POST of the accepted message',
      });
      // the client heard 250: the API must get the message as it was sent
      expect(JSON.stringify(api.requests[1]!.body)).to.include(marker);
    } else {
      // refused (the journal's append ran past the limit): nothing was promised
      expect(sent.code, sent.response).to.equal(451);
    }
    // what the failed append wrote was cut off its segment: a message after it is accepted,
    // and the segment holds whole records only (no torn bytes before them)
    const after = await sendRaw({
      port: smtpPort,
      to: ['support@example.com'],
      raw: makeMessage(
        {
          From: 'jane@example.net',
          To: 'support@example.com',
          Subject: 'after',
        },
        'AFTER-THE-CUT\r\n',
      ),
    });
    expect(after.code, after.response).to.equal(250);
    await waitFor(
      () =>
        stdout.includes('"message delivered"') &&
        api.requests.some(r =>
          JSON.stringify(r.body).includes('AFTER-THE-CUT'),
        ),
      [
        [api, 'request'],
        [child.stdout!, 'data'],
      ],
      { timeoutMs: 10_000, what: 'the message after the cut to be delivered' },
    );
    const active = join(dir, 'spool', 'active');
    const segments = (await readdir(active)).filter(isSegmentName);
    expect(segments).to.have.length.greaterThan(0);
    for (const name of segments) {
      // a segment whose records are all done may be deleted since the listing
      const contents = await segmentIfAny(join(active, name));
      if (!contents) continue;
      const { torn, damaged } = contents;
      expect({ name, torn, damaged }).to.deep.equal({
        name,
        torn: false,
        damaged: false,
      });
    }
  });

  it('inject: "queued as" only for a message whose spooled file is whole', async () => {
    const file = join(dir, 'big.eml');
    const raw = bigMessage('END-OF-MESSAGE-MARKER');
    await writeFile(file, raw);
    const spoolDir = join(dir, 'spool');
    child = cliUnderFileLimit(
      ['inject', file, '--rcpt', 'support@example.com'],
      { MAILBRIDGE_SPOOL_DIR: spoolDir },
    );
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) return; // refused: nothing was promised
    const [name] = await readdir(join(spoolDir, 'msg'));
    const spooled = await readFile(join(spoolDir, 'msg', name!));
    const state = JSON.parse(
      await readFile(
        join(spoolDir, 'queue', name!.replace(/\.eml$/, '.json')),
        'utf8',
      ),
    ) as { rawOffset: number };
    expect(spooled.length - state.rawOffset).to.equal(Buffer.byteLength(raw));
  });
});
