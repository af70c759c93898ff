// `mailbridge queue ...` and `inject` as real child processes, on spools they prepared themselves.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import {
  cp,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { QueueEntry } from '../../src/spool/queue-entry.js';
import { Spool } from '../../src/spool/spool.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';
import { spoolFiles } from '../helpers/wait-for.js';

const EML = fileURLToPath(new URL('../fixtures/eml/', import.meta.url));
/** Message-ID <plain-1@example.net>, From jane@example.net */
const PLAIN = join(EML, 'plain.eml');
/** Message-ID <attach-1@example.net> */
const WITH_ATTACHMENT = join(EML, 'with-attachment.eml');

const ROUTES_YAML = `routes:
  - match: support@example.com
    mailbox_id: mb-support
  - match: "*@example.org"
    mailbox_id: mb-sales
`;

/** The fields of a `list`/`dead` row, as the contract names them. */
const SUMMARY_KEYS = [
  'id',
  'messageId',
  'from',
  'recipients',
  'attempts',
  'nextAttemptAt',
  'lastError',
];

const HOUR = 60 * 60 * 1000;

type State = 'queue' | 'active' | 'dead';

/** stdout's non-empty lines. */
function lines(text: string): string[] {
  return text.split('\n').filter(line => line.trim());
}

describe('queue and inject commands', function () {
  // every command is a fresh node process (about 0.8 s each, several seconds on a loaded
  // machine), up to five at once in a test
  this.timeout(60_000);

  let dir: string;
  let spoolDir: string;
  let configFile: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-queue-cli-'));
    spoolDir = join(dir, 'spool');
    configFile = join(dir, 'routes.yaml');
    await writeFile(configFile, ROUTES_YAML);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** `mailbridge ...args --config routes.yaml` on this test's spool. */
  function cli(...args: string[]): Promise<CliResult> {
    return runCli([...args, '--config', configFile], {
      MAILBRIDGE_SPOOL_DIR: spoolDir,
    });
  }

  /** Injects a message and returns its queue id. */
  async function inject(
    file: string,
    rcpt: string[],
    from?: string,
  ): Promise<string> {
    const args = ['inject', file, ...rcpt.flatMap(r => ['--rcpt', r])];
    const result = await cli(...args, ...(from ? ['--from', from] : []));
    expect(result.code, result.stderr).to.equal(0);
    const id = /^queued as (\S+)\n$/.exec(result.stdout)?.[1];
    expect(id, result.stdout).to.be.a('string');
    return id!;
  }

  function statePath(state: State, id: string): string {
    return join(spoolDir, state, `${id}.json`);
  }

  async function readState(state: State, id: string): Promise<QueueEntry> {
    return JSON.parse(
      await readFile(statePath(state, id), 'utf8'),
    ) as QueueEntry;
  }

  /** Rewrites an entry where it is, as an earlier attempt of the daemon would have. */
  async function editState(
    state: State,
    id: string,
    edit: (entry: QueueEntry) => QueueEntry,
  ): Promise<QueueEntry> {
    const entry = edit(await readState(state, id));
    await writeFile(statePath(state, id), JSON.stringify(entry));
    return entry;
  }

  /** Moves an injected entry into dead/, its routes failed, as a 400 from the API leaves it. */
  async function makeDead(
    id: string,
    edit: (entry: QueueEntry) => QueueEntry = e => e,
  ): Promise<QueueEntry> {
    const entry = edit({
      ...(await readState('queue', id)),
      attempts: 1,
      lastError: 'API HTTP 400',
      dead: {
        reason: 'refused: API HTTP 400',
        at: new Date().toISOString(),
        status: 400,
      },
    });
    entry.routes = entry.routes.map(r =>
      r.status === 'pending'
        ? { ...r, status: 'failed', lastError: 'API HTTP 400' }
        : r,
    );
    await writeFile(statePath('dead', id), JSON.stringify(entry));
    await rm(statePath('queue', id));
    return entry;
  }

  /** Every file of the spool, folder by folder (missing folders are empty). */
  async function spoolContents(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const folder of ['tmp', 'msg', 'queue', 'active', 'dead']) {
      out[folder] = await spoolFiles(spoolDir, folder);
    }
    return out;
  }

  const EMPTY = { tmp: [], msg: [], queue: [], active: [], dead: [] };

  describe('inject', () => {
    it('spools the raw bytes and a due entry in queue/, one route per mailbox', async () => {
      const before = Date.now();
      const id = await inject(
        PLAIN,
        ['support@example.com', 'a@example.org', 'b@example.org'],
        'jane@example.net',
      );
      const after = Date.now();
      // the raw bytes as they are, after one header line with the state at accept time
      const spooled = await readFile(join(spoolDir, 'msg', `${id}.eml`));
      const headerEnd = spooled.indexOf('\r\n') + 2;
      expect(spooled.subarray(0, headerEnd).toString()).to.match(
        /^X-Mailbridge-Queue: \{.*\}\r\n$/,
      );
      expect(spooled.subarray(headerEnd)).to.deep.equal(await readFile(PLAIN));
      const entry = await readState('queue', id);
      expect(entry).to.include({
        id,
        messageId: '<plain-1@example.net>',
        attempts: 0,
        lastError: null,
      });
      expect(entry.nextAttemptAt).to.be.within(before, after);
      expect(entry.envelope).to.include({
        id,
        mailFrom: 'jane@example.net',
        helo: 'mailbridge-inject',
      });
      expect(entry.envelope.rcptTo).to.deep.equal([
        'support@example.com',
        'a@example.org',
        'b@example.org',
      ]);
      expect(
        entry.routes.map(r => [r.route.mailbox_id, r.recipients, r.status]),
      ).to.deep.equal([
        ['mb-support', ['support@example.com'], 'pending'],
        ['mb-sales', ['a@example.org', 'b@example.org'], 'pending'],
      ]);
      expect(await spoolContents()).to.deep.equal({
        ...EMPTY,
        msg: [`${id}.eml`],
        queue: [`${id}.json`],
      });
    });

    it('an unrouted --rcpt exits 1 naming it and writes nothing', async () => {
      const result = await cli(
        'inject',
        PLAIN,
        '--rcpt',
        'support@example.com',
        '--rcpt',
        'nobody@example.com',
      );
      expect(result.code).to.equal(1);
      expect(result.stderr).to.include('550 5.1.1');
      expect(result.stderr).to.include('nobody@example.com');
      expect(result.stdout).to.equal('');
      expect(await spoolContents()).to.deep.equal(EMPTY);
    });

    it('a message over the parser limits exits 1 with 554 5.6.0 and leaves nothing in tmp/ or anywhere', async () => {
      // 1001 MIME parts: as SMTP refuses it at the end of DATA (mail/structure.ts)
      const parts = Array.from(
        { length: 1001 },
        (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`,
      ).join('');
      const file = join(dir, 'many-parts.eml');
      await writeFile(
        file,
        'From: jane@example.net\r\nTo: support@example.com\r\nSubject: parts\r\n' +
          'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
          `${parts}--b--\r\n`,
      );
      const result = await cli('inject', file, '--rcpt', 'support@example.com');
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/554 5\.6\.0 message structure refused: /);
      expect(result.stdout).to.equal('');
      expect(await spoolContents()).to.deep.equal(EMPTY);
    });

    it('a missing file exits 1 and leaves nothing in tmp/ or anywhere', async () => {
      const missing = join(dir, 'no-such.eml');
      const result = await cli(
        'inject',
        missing,
        '--rcpt',
        'support@example.com',
      );
      expect(result.code).to.equal(1);
      expect(result.stderr).to.include(missing);
      expect(result.stdout).to.equal('');
      expect(await spoolContents()).to.deep.equal(EMPTY);
    });

    describe('smtp.maxMessageSize', () => {
      /** plain.eml's size in bytes */
      let size: number;

      beforeEach(async () => {
        size = (await stat(PLAIN)).size;
      });

      /** `inject FILE --rcpt support@example.com` with smtp.maxMessageSize `limit`. */
      async function injectLimited(
        file: string,
        limit: number,
      ): Promise<CliResult> {
        const config = join(dir, 'limited.yaml');
        await writeFile(
          config,
          `${ROUTES_YAML}smtp:\n  maxMessageSize: ${limit}\n`,
        );
        return runCli(
          ['inject', file, '--rcpt', 'support@example.com', '--config', config],
          { MAILBRIDGE_SPOOL_DIR: spoolDir },
        );
      }

      const tooBig = (bytes: number, limit: number) =>
        `mailbridge: 552 5.3.4 message too big (${bytes} bytes; smtp.maxMessageSize is ${limit})\n`;

      it('a file over the limit exits 1 with a 552 and spools nothing', async () => {
        const result = await injectLimited(PLAIN, size - 1);
        expect(result.code).to.equal(1);
        expect(result.stderr).to.equal(tooBig(size, size - 1));
        expect(result.stdout).to.equal('');
        expect(await spoolContents()).to.deep.equal(EMPTY);
      });

      it('a file of exactly the limit is spooled', async () => {
        const result = await injectLimited(PLAIN, size);
        expect(result.code, result.stderr).to.equal(0);
        const id = /^queued as (\S+)\n$/.exec(result.stdout)?.[1];
        expect(await spoolContents()).to.deep.equal({
          ...EMPTY,
          msg: [`${id}.eml`],
          queue: [`${id}.json`],
        });
      });

      it('more bytes read than stat showed (a pipe) are refused after reading, nothing left', async () => {
        // a FIFO's stat says 0 bytes: only the count of what was read can tell
        const fifo = join(dir, 'message.fifo');
        await promisify(execFile)('mkfifo', [fifo]);
        const [result] = await Promise.all([
          injectLimited(fifo, size - 1),
          writeFile(fifo, await readFile(PLAIN)),
        ]);
        expect(result.code).to.equal(1);
        expect(result.stderr).to.equal(tooBig(size, size - 1));
        expect(result.stdout).to.equal('');
        expect(await spoolContents()).to.deep.equal(EMPTY);
      });

      it('an input that never ends (/dev/zero) is refused once past the limit, nothing left', async () => {
        const result = await injectLimited('/dev/zero', 1000);
        expect(result.code).to.equal(1);
        expect(result.stderr).to.match(
          /^mailbridge: 552 5\.3\.4 message too big \(\d+ bytes; smtp\.maxMessageSize is 1000\)\n$/,
        );
        expect(await spoolContents()).to.deep.equal(EMPTY);
      });
    });

    it('bad usage exits 2: no --rcpt, no FILE', async () => {
      const [noRcpt, noFile] = await Promise.all([
        cli('inject', PLAIN),
        cli('inject', '--rcpt', 'support@example.com'),
      ]);
      expect(noRcpt.code).to.equal(2);
      expect(noRcpt.stderr).to.include('--rcpt');
      expect(noFile.code).to.equal(2);
      expect(noFile.stderr).to.include('inject needs one FILE.eml');
      expect(await spoolContents()).to.deep.equal(EMPTY);
    });
  });

  /**
   * A spool prepared once with `inject` and copied for each test (every command is a process):
   * A plain.eml to support@ from jane@; B with-attachment.eml to two @example.org recipients
   * (one route); C plain.eml to support@ and a@example.org (two routes). Ids sort A < B < C.
   */
  describe('on a spool prepared with inject', () => {
    let templateDir: string;
    let A: string;
    let B: string;
    let C: string;

    before(async () => {
      templateDir = await mkdtemp(join(tmpdir(), 'mailbridge-queue-template-'));
      const config = join(templateDir, 'routes.yaml');
      await writeFile(config, ROUTES_YAML);
      const injectInto = async (file: string, args: string[]) => {
        const result = await runCli(
          ['inject', file, ...args, '--config', config],
          { MAILBRIDGE_SPOOL_DIR: join(templateDir, 'spool') },
        );
        expect(result.code, result.stderr).to.equal(0);
        return /^queued as (\S+)\n$/.exec(result.stdout)![1]!;
      };
      // one after the other: ids begin with the time, so they sort in this order
      A = await injectInto(PLAIN, [
        '--rcpt',
        'support@example.com',
        '--from',
        'jane@example.net',
      ]);
      B = await injectInto(WITH_ATTACHMENT, [
        '--rcpt',
        'x@example.org',
        '--rcpt',
        'y@example.org',
      ]);
      C = await injectInto(PLAIN, [
        '--rcpt',
        'support@example.com',
        '--rcpt',
        'a@example.org',
      ]);
      expect([A, B, C]).to.deep.equal([A, B, C].sort());
    });
    after(async () => {
      await rm(templateDir, { recursive: true, force: true });
    });
    beforeEach(async () => {
      await cp(join(templateDir, 'spool'), spoolDir, { recursive: true });
    });

    it('inject without --from spools a null sender; several recipients of a route stay one route', async () => {
      const b = await readState('queue', B);
      expect(b.envelope.mailFrom).to.equal(null);
      expect(b.routes.map(r => r.recipients)).to.deep.equal([
        ['x@example.org', 'y@example.org'],
      ]);
      expect(await spoolContents()).to.deep.equal({
        ...EMPTY,
        msg: [A, B, C].map(id => `${id}.eml`),
        queue: [A, B, C].map(id => `${id}.json`),
      });
    });

    describe('list and dead', () => {
      it('list prints a header row, a line per waiting message (ID first) and a totals line; dead the same', async () => {
        await makeDead(C);
        const [list, dead] = await Promise.all([
          cli('queue', 'list'),
          cli('queue', 'dead'),
        ]);
        expect(list.code, list.stderr).to.equal(0);
        const [header, ...listed] = lines(list.stdout);
        expect(header).to.match(
          /^ID +ARRIVAL \(UTC\) +NEXT ATTEMPT +SIZE +TRIES +FROM +RECIPIENTS +LAST ERROR$/,
        );
        const totals = listed.pop();
        expect(listed.map(l => l.split(/\s+/)[0])).to.deep.equal([A, B]);
        expect(listed[0]).to.match(
          new RegExp(
            `^${A} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +now +\\d+ B +0 +jane@example\\.net +support@example\\.com$`,
          ),
        );
        expect(listed[1]).to.include(' <> ');
        expect(listed[1]).to.include('x@example.org, y@example.org');
        expect(totals).to.match(/^-- 2 messages, 3 recipients, [\d.]+ KiB$/);
        expect(dead.code, dead.stderr).to.equal(0);
        const [deadHeader, ...buried] = lines(dead.stdout);
        expect(deadHeader).to.match(/^ID +ARRIVAL \(UTC\) +DEAD SINCE +SIZE/);
        expect(buried.map(l => l.split(/\s+/)[0])).to.deep.equal([C, '--']);
        expect(buried[0]).to.match(
          / +1 +<> +support@example\.com, a@example\.org +refused: API HTTP 400$/,
        );
        expect(buried[1]).to.match(/^-- 1 message, 2 recipients, \d+ B$/);
      });

      it('--json prints an array of {id, messageId, from, recipients, attempts, nextAttemptAt, lastError}', async () => {
        const due = new Date(Date.now() + HOUR);
        await editState('queue', B, e => ({
          ...e,
          attempts: 2,
          nextAttemptAt: due.getTime(),
          lastError: 'API HTTP 503',
        }));
        await makeDead(C);
        const aDue = (await readState('queue', A)).nextAttemptAt;

        const [list, dead] = await Promise.all([
          cli('queue', 'list', '--json'),
          cli('queue', 'dead', '--json'),
        ]);
        expect(list.code, list.stderr).to.equal(0);
        const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
        expect(rows).to.deep.equal([
          {
            id: A,
            messageId: '<plain-1@example.net>',
            from: 'jane@example.net',
            recipients: ['support@example.com'],
            attempts: 0,
            nextAttemptAt: new Date(aDue).toISOString(),
            lastError: null,
          },
          {
            id: B,
            messageId: '<attach-1@example.net>',
            from: null,
            recipients: ['x@example.org', 'y@example.org'],
            attempts: 2,
            nextAttemptAt: due.toISOString(),
            lastError: 'API HTTP 503',
          },
        ]);
        for (const row of rows) expect(row).to.have.all.keys(SUMMARY_KEYS);

        expect(dead.code, dead.stderr).to.equal(0);
        const [buried, ...more] = JSON.parse(dead.stdout) as Array<
          Record<string, unknown>
        >;
        expect(more).to.deep.equal([]);
        // the contract's fields, plus why it died
        expect(buried).to.include.all.keys(SUMMARY_KEYS);
        expect(buried).to.deep.include({
          id: C,
          messageId: '<plain-1@example.net>',
          from: null,
          recipients: ['support@example.com', 'a@example.org'],
          attempts: 1,
          nextAttemptAt: null,
          lastError: 'API HTTP 400',
        });
      });
    });

    describe('show', () => {
      it('--json prints the stored state of a waiting and of a dead message', async () => {
        await makeDead(C);
        const [shownWaiting, shownDead] = await Promise.all([
          cli('queue', 'show', A, '--json'),
          cli('queue', 'show', C, '--json'),
        ]);
        expect(shownWaiting.code, shownWaiting.stderr).to.equal(0);
        expect(JSON.parse(shownWaiting.stdout)).to.deep.equal({
          ...(await readState('queue', A)),
          state: 'queue',
          raw: join(spoolDir, 'msg', `${A}.eml`),
        });
        expect(shownDead.code, shownDead.stderr).to.equal(0);
        expect(JSON.parse(shownDead.stdout)).to.deep.include({
          state: 'dead',
          id: C,
          dead: (await readState('dead', C)).dead,
        });
      });
    });

    describe('retry', () => {
      it('retry ID makes a waiting message due now, keeping its history', async () => {
        const before = await editState('queue', A, e => ({
          ...e,
          attempts: 3,
          nextAttemptAt: Date.now() + HOUR,
          lastError: 'API HTTP 503',
        }));
        const start = Date.now();
        const result = await cli('queue', 'retry', A);
        expect(result.code, result.stderr).to.equal(0);
        expect(result.stdout).to.equal(`${A} due now\n`);
        const after = await readState('queue', A);
        expect(after.nextAttemptAt).to.be.within(start, Date.now());
        expect({ ...after, nextAttemptAt: 0 }).to.deep.equal({
          ...before,
          nextAttemptAt: 0,
        });
        expect(await spoolFiles(spoolDir, 'tmp')).to.deep.equal([]);
      });

      it('retry --all makes every waiting message due now and leaves dead ones', async () => {
        for (const id of [A, B]) {
          await editState('queue', id, e => ({
            ...e,
            attempts: 1,
            nextAttemptAt: Date.now() + HOUR,
          }));
        }
        const dead = await makeDead(C);
        const start = Date.now();
        const result = await cli('queue', 'retry', '--all');
        expect(result.code, result.stderr).to.equal(0);
        expect(result.stdout).to.equal('2 messages due now\n');
        for (const id of [A, B]) {
          const entry = await readState('queue', id);
          expect(entry.nextAttemptAt).to.be.within(start, Date.now());
          expect(entry.attempts).to.equal(1);
        }
        expect(await readState('dead', C)).to.deep.equal(dead);
      });

      it('retry of a dead message exits 1 and points to replay', async () => {
        const dead = await makeDead(C);
        const result = await cli('queue', 'retry', C);
        expect(result.code).to.equal(1);
        expect(result.stderr).to.include('use queue replay');
        expect(await readState('dead', C)).to.deep.equal(dead);
      });
    });

    describe('replay', () => {
      it('moves a dead message back to queue/, its failed routes pending, due now', async () => {
        // the first route got through before the second was refused
        const dead = await makeDead(C, e => ({
          ...e,
          routes: e.routes.map((r, i) =>
            i === 0 ? { ...r, status: 'delivered' } : r,
          ),
        }));
        expect(dead.routes.map(r => r.status)).to.deep.equal([
          'delivered',
          'failed',
        ]);
        const start = Date.now();
        const result = await cli('queue', 'replay', C);
        expect(result.code, result.stderr).to.equal(0);
        expect(result.stdout).to.equal(`${C} queued again\n`);
        const entry = await readState('queue', C);
        expect(entry.routes.map(r => r.status)).to.deep.equal([
          'delivered',
          'pending',
        ]);
        expect(entry).to.not.have.property('dead');
        expect(entry.attempts).to.equal(0);
        expect(entry.nextAttemptAt).to.be.within(start, Date.now());
        expect(await spoolContents()).to.deep.equal({
          ...EMPTY,
          msg: [A, B, C].map(id => `${id}.eml`),
          queue: [A, B, C].map(id => `${id}.json`),
        });
      });

      // Regression: replay took the dead state out (unlinking it) before the new one was
      // written, so a failed write (disk full, I/O error) or a kill -9 in between lost the
      // message: its raw file, left without a state, is deleted as an orphan at the next start.
      it('a replay that cannot write the new state leaves the dead message in dead/', async () => {
        const dead = await makeDead(C);
        // a directory squatting on queue/<C>.json makes the rename of the new state fail
        await mkdir(join(statePath('queue', C), 'squat'), { recursive: true });
        const result = await cli('queue', 'replay', C);
        expect(result.code).to.equal(1);
        expect(result.stdout).to.equal('');
        expect(await readState('dead', C)).to.deep.equal(dead);
        expect(await spoolFiles(spoolDir, 'msg')).to.include(`${C}.eml`);
        expect(await spoolFiles(spoolDir, 'tmp')).to.deep.equal([]);
      });

      it('replay of a waiting message exits 1 and leaves it alone', async () => {
        const before = await readState('queue', A);
        const result = await cli('queue', 'replay', A);
        expect(result.code).to.equal(1);
        expect(result.stderr).to.include(`${A} is in queue/`);
        expect(await readState('queue', A)).to.deep.equal(before);
      });
    });

    describe('purge', () => {
      it('removes the state and the raw message of a waiting and of a dead message', async () => {
        await makeDead(C);
        const [purgedWaiting, purgedDead] = await Promise.all([
          cli('queue', 'purge', A),
          cli('queue', 'purge', C),
        ]);
        expect(purgedWaiting.code, purgedWaiting.stderr).to.equal(0);
        expect(purgedWaiting.stdout).to.equal(`${A} purged\n`);
        expect(purgedDead.code, purgedDead.stderr).to.equal(0);
        expect(purgedDead.stdout).to.equal(`${C} purged\n`);
        expect(await spoolContents()).to.deep.equal({
          ...EMPTY,
          msg: [`${B}.eml`],
          queue: [`${B}.json`],
        });
      });
    });

    describe('errors', () => {
      it('an unknown ID exits 1 for show, retry, replay and purge', async () => {
        const before = await spoolContents();
        const results = await Promise.all(
          ['show', 'retry', 'replay', 'purge'].map(action =>
            cli('queue', action, 'NOSUCHID'),
          ),
        );
        for (const result of results) {
          expect(result.code, result.stderr).to.equal(1);
          expect(result.stderr).to.include('no message NOSUCHID in the spool');
          expect(result.stdout).to.equal('');
        }
        expect(await spoolContents()).to.deep.equal(before);
      });

      it('a missing ID exits 2 for show, retry, replay and purge', async () => {
        const before = await spoolContents();
        const results = await Promise.all(
          ['show', 'retry', 'replay', 'purge'].map(action =>
            cli('queue', action),
          ),
        );
        for (const result of results) {
          expect(result.code, result.stderr).to.equal(2);
          expect(result.stderr).to.include('needs a message ID');
          expect(result.stdout).to.equal('');
        }
        expect(await spoolContents()).to.deep.equal(before);
      });

      // Regression: ids went into file paths unchecked, so `queue purge ../../victim` deleted
      // victim.json and victim.eml two folders above the spool.
      it('an ID that is not one (a path) exits 2 and touches nothing outside the spool', async () => {
        await writeFile(join(dir, 'victim.json'), JSON.stringify({ id: 'x' }));
        await writeFile(join(dir, 'victim.eml'), 'precious');
        const results = await Promise.all(
          ['show', 'purge'].map(action => cli('queue', action, '../../victim')),
        );
        for (const result of results) {
          expect(result.code, result.stderr).to.equal(2);
          expect(result.stderr).to.include('not a message ID: "../../victim"');
          expect(result.stdout).to.equal('');
        }
        expect(await readFile(join(dir, 'victim.eml'), 'utf8')).to.equal(
          'precious',
        );
        expect(await readFile(join(dir, 'victim.json'), 'utf8')).to.equal(
          '{"id":"x"}',
        );
      });

      it('an entry in active/ is "being delivered": retry, replay, purge exit 1; show and list see it', async () => {
        await rename(statePath('queue', A), statePath('active', A));
        const before = await spoolContents();
        const [retry, replay, purge, show, list] = await Promise.all([
          cli('queue', 'retry', A),
          cli('queue', 'replay', A),
          cli('queue', 'purge', A),
          cli('queue', 'show', A, '--json'),
          cli('queue', 'list', '--json'),
        ]);
        for (const result of [retry, replay, purge]) {
          expect(result.code).to.equal(1);
          expect(result.stderr).to.include(`${A} is being delivered`);
        }
        expect(show.code, show.stderr).to.equal(0);
        expect(JSON.parse(show.stdout)).to.include({ state: 'active', id: A });
        expect(
          (JSON.parse(list.stdout) as Array<{ id: string }>).map(r => r.id),
        ).to.deep.equal([A, B, C]);
        expect(await spoolContents()).to.deep.equal(before);
      });
    });
  });

  describe('usage', () => {
    it('an empty spool: list and dead say so in a line, and [] with --json', async () => {
      await new Spool(spoolDir).init();
      const [list, listJson, dead, deadJson] = await Promise.all([
        cli('queue', 'list'),
        cli('queue', 'list', '--json'),
        cli('queue', 'dead'),
        cli('queue', 'dead', '--json'),
      ]);
      for (const result of [list, listJson, dead, deadJson]) {
        expect(result.code, result.stderr).to.equal(0);
      }
      expect(list.stdout).to.equal('queue is empty\n');
      expect(dead.stdout).to.equal('no dead messages\n');
      expect(JSON.parse(listJson.stdout)).to.deep.equal([]);
      expect(JSON.parse(deadJson.stdout)).to.deep.equal([]);
    });

    it('an unknown action, or an extra argument, exits 2', async () => {
      const [unknown, extra] = await Promise.all([
        cli('queue', 'frobnicate'),
        cli('queue', 'show', 'A', 'B'),
      ]);
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr).to.include('unknown queue action "frobnicate"');
      expect(extra.code).to.equal(2);
      expect(extra.stderr).to.include('at most one ID');
    });
  });

  describe('on the spool of a running daemon', () => {
    const t = useBridge();

    beforeEach(async () => {
      await t.start({
        api: apiAt(t.api.url),
        delivery: { scanIntervalMs: 50 },
      });
    });

    /** The command line on the running daemon's spool and configuration. */
    function onBridge(...args: string[]): Promise<CliResult> {
      return runCli(args, { MAILBRIDGE_SPOOL_DIR: t.bridge.spoolDir });
    }

    it('a message the API refused with 400 is listed dead; replay delivers it', async () => {
      t.api.setDefault({
        status: 400,
        body: { errors: [{ code: 'bad_field', message: 'no' }] },
      });
      const sent = await sendRaw({
        port: t.bridge.smtpPort,
        to: ['support@example.com'],
        raw: makeMessage({
          From: 'jane@example.net',
          To: 'support@example.com',
          Subject: 'Refused',
          'Message-ID': '<refused-1@example.net>',
        }),
      });
      expect(sent.code).to.equal(250);
      const id = /queued as (\S+)/.exec(sent.response)?.[1];
      await t.bridge.waitForLog(l => l.message === 'message dead');

      const dead = await onBridge('queue', 'dead', '--json');
      expect(dead.code, dead.stderr).to.equal(0);
      const rows = JSON.parse(dead.stdout) as Array<Record<string, unknown>>;
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({
        id,
        messageId: '<refused-1@example.net>',
        from: 'sender@example.net',
        attempts: 1,
        nextAttemptAt: null,
      });
      expect(rows[0]?.lastError).to.include('400');

      t.api.setDefault({ status: 204 });
      const replay = await onBridge('queue', 'replay', id!);
      expect(replay.code, replay.stderr).to.equal(0);
      // the daemon sees it at its next scan
      const [, again] = await t.api.waitForRequests(2);
      expect(again?.body.ext_msg_id).to.equal('<refused-1@example.net>');
      await t.bridge.waitForLog(
        l => l.message === 'message delivered' && l.queueId === id,
      );
      expect(await spoolFiles(t.bridge.spoolDir, 'dead')).to.deep.equal([]);
      expect(await spoolFiles(t.bridge.spoolDir, 'queue')).to.deep.equal([]);
      expect(await spoolFiles(t.bridge.spoolDir, 'msg')).to.deep.equal([]);
    });

    it('an injected message is delivered by the running daemon', async () => {
      const result = await onBridge(
        'inject',
        PLAIN,
        '--rcpt',
        'support@example.com',
        '--from',
        'jane@example.net',
      );
      expect(result.code, result.stderr).to.equal(0);
      const id = /^queued as (\S+)\n$/.exec(result.stdout)?.[1];
      const [request] = await t.api.waitForRequests(1);
      expect(request?.body).to.include({
        from: 'jane@example.net',
        subject: 'Printer on fire',
        ext_msg_id: '<plain-1@example.net>',
      });
      await t.bridge.waitForLog(
        l => l.message === 'message delivered' && l.queueId === id,
      );
      expect(await spoolFiles(t.bridge.spoolDir, 'queue')).to.deep.equal([]);
      expect(await spoolFiles(t.bridge.spoolDir, 'msg')).to.deep.equal([]);
    });
  });
});
