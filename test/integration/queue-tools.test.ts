// The queue tools as an operator used to postqueue uses them (issue 18): they need only the
// spool, refuse a folder that is not one, show a message for a person, act in bulk on a running
// daemon's spool, shape the queue by age and mailbox, and answer --help per command.
import { expect } from 'chai';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteConfig } from '../../src/config/schema.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { queueIdOf, writeSpooledEntry } from '../helpers/queue-tools.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';
import { spoolFiles } from '../helpers/wait-for.js';

const ROUTE_TABLE = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: '*@example.org', mailbox_id: 'mb-sales' },
];
const ROUTES = ROUTE_TABLE.map(r => ({
  ...r,
  thread_from_subaddress: false,
  fields: {},
})) as RouteConfig[];

const HOUR = 3_600_000;

function lines(text: string): string[] {
  return text.split('\n').filter(line => line.trim());
}

describe('queue tools: spool only, bulk, shape, show, help', function () {
  // every command is a fresh node process (several seconds each on a loaded machine)
  this.timeout(120_000);

  let dir: string;
  let spoolDir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-queue-tools-'));
    spoolDir = join(dir, 'spool');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A message spooled in `state` as the daemon leaves it, to `rcptTo`, `ageMs` old. */
  function spooled(
    id: string,
    rcptTo: string[],
    state: 'queue' | 'active' | 'dead' | 'held' = 'queue',
    ageMs = 0,
  ) {
    return writeSpooledEntry({
      dir: spoolDir,
      id,
      raw: makeMessage({ From: 'jane@example.net', Subject: id }),
      rcptTo,
      routes: ROUTES,
      messageId: `<${id}@example.net>`,
      state,
      now: Date.now() - ageMs,
    });
  }

  describe('needs only spool.dir', () => {
    it('NODE_ENV=production with no token and no routes: list, dead and shape read the spool', async () => {
      await spooled('PA1', ['support@example.com']);
      const env = { NODE_ENV: 'production', MAILBRIDGE_SPOOL_DIR: spoolDir };
      const [list, dead, shape] = await Promise.all([
        runCli(['queue', 'list', '--json'], env),
        runCli(['queue', 'dead'], env),
        runCli(['queue', 'shape'], env),
      ]);
      expect(list.code, list.stderr).to.equal(0);
      expect(
        (JSON.parse(list.stdout) as Array<{ id: string }>).map(r => r.id),
      ).to.deep.equal(['PA1']);
      expect(dead.code, dead.stderr).to.equal(0);
      expect(dead.stdout).to.equal('no dead messages\n');
      expect(shape.code, shape.stderr).to.equal(0);
      expect(lines(shape.stdout)[2]).to.match(/^mb-support +1 +1 /);
    });

    it('spool.dir from a --config file whose other keys the daemon would refuse', async () => {
      await spooled('PB1', ['a@example.org']);
      const file = join(dir, 'broken.yaml');
      await writeFile(
        file,
        `spool:\n  dir: ${spoolDir}\napi:\n  timeoutMs: soon\n`,
      );
      const [list, check] = await Promise.all([
        runCli(['queue', 'list', '--config', file]),
        runCli(['check-config', '--config', file]),
      ]);
      expect(list.code, list.stderr).to.equal(0);
      expect(lines(list.stdout)[1]).to.match(/^PB1 /);
      expect(check.code).to.equal(2);
      expect(check.stderr).to.include('api.timeoutMs');
    });

    it('a folder that is not a spool: one line saying so, exit 1, nothing created', async () => {
      // a typo'd path, and the spool's parent (a folder, but no spool)
      await mkdir(join(dir, 'other'));
      await writeFile(join(dir, 'other', 'notes.txt'), 'x');
      const missing = join(dir, 'no-such-spool');
      const runs = await Promise.all([
        ...[
          ['queue', 'list'],
          ['queue', 'retry', '--all'],
          ['queue', 'purge', '--dead'],
        ].map(args => runCli(args, { MAILBRIDGE_SPOOL_DIR: missing })),
        ...[
          ['queue', 'show', 'ABC123'],
          ['queue', 'shape'],
        ].map(args =>
          runCli(args, { MAILBRIDGE_SPOOL_DIR: join(dir, 'other') }),
        ),
      ]);
      for (const [i, result] of runs.entries()) {
        expect(result.code, result.stderr).to.equal(1);
        expect(result.stdout).to.equal('');
        expect(lines(result.stderr)).to.have.length(1);
        expect(result.stderr).to.include(
          i < 3
            ? `${missing} is not a spool: no such folder`
            : `${join(dir, 'other')} is not a spool: it has no tmp/, msg/, queue/, dead/`,
        );
      }
      expect((await readdir(dir)).sort()).to.deep.equal(['other']);
      expect(await readdir(join(dir, 'other'))).to.deep.equal(['notes.txt']);
    });
  });

  describe('bulk operations and shape on a stopped spool', () => {
    beforeEach(async () => {
      await spooled('WA1', ['support@example.com'], 'queue', 2 * HOUR);
      await spooled('WB2', ['a@example.org'], 'queue', 7 * 60_000);
      // owed to both mailboxes
      await spooled('WC3', ['support@example.com', 'b@example.org'], 'queue');
      await spooled('DD4', ['support@example.com'], 'dead', 30 * HOUR);
      await spooled('DE5', ['c@example.org'], 'dead');
      await spooled('HF6', ['support@example.com'], 'held');
    });

    function cli(...args: string[]): Promise<CliResult> {
      return runCli(args, { MAILBRIDGE_SPOOL_DIR: spoolDir });
    }

    it('shape counts waiting messages by age and mailbox (TOTAL once per message); --by domain; --dead; --json', async () => {
      const [byMailbox, byDomain, dead, json] = await Promise.all([
        cli('queue', 'shape'),
        cli('queue', 'shape', '--by', 'domain'),
        cli('queue', 'shape', '--dead'),
        cli('queue', 'shape', '--json'),
      ]);
      expect(byMailbox.code, byMailbox.stderr).to.equal(0);
      const cells = (text: string) => lines(text).map(l => l.split(/\s+/));
      expect(cells(byMailbox.stdout)).to.deep.equal([
        [
          'MAILBOX',
          'TOTAL',
          '0-5m',
          '5-10m',
          '10-20m',
          '20-40m',
          '40m-1h',
        ].concat(['1-2h', '2-4h', '4-8h', '8h-1d', '>1d']),
        ['TOTAL', '3', '1', '1', '0', '0', '0', '0', '1', '0', '0', '0'],
        ['mb-sales', '2', '1', '1', '0', '0', '0', '0', '0', '0', '0', '0'],
        ['mb-support', '2', '1', '0', '0', '0', '0', '0', '1', '0', '0', '0'],
      ]);
      expect(cells(byDomain.stdout).map(r => r.slice(0, 2))).to.deep.equal([
        ['DOMAIN', 'TOTAL'],
        ['TOTAL', '3'],
        ['example.com', '2'],
        ['example.org', '2'],
      ]);
      expect(cells(dead.stdout).map(r => [r[0], r[1], r.at(-1)])).to.deep.equal(
        [
          ['MAILBOX', 'TOTAL', '>1d'],
          ['TOTAL', '2', '1'],
          ['mb-sales', '1', '0'],
          ['mb-support', '1', '1'],
        ],
      );
      const shape = JSON.parse(json.stdout) as {
        by: string;
        buckets: string[];
        total: { total: number; counts: number[] };
        rows: Array<{ name: string; total: number }>;
      };
      expect(shape.by).to.equal('mailbox');
      expect(shape.buckets).to.have.length(10);
      expect(shape.total.counts).to.deep.equal([1, 1, 0, 0, 0, 0, 1, 0, 0, 0]);
      expect(shape.rows.map(r => [r.name, r.total])).to.deep.equal([
        ['mb-sales', 2],
        ['mb-support', 2],
      ]);
    });

    it('list --mailbox and --domain show what is still owed there', async () => {
      const [support, org] = await Promise.all([
        cli('queue', 'list', '--mailbox', 'mb-support', '--json'),
        cli('queue', 'dead', '--domain', 'EXAMPLE.org', '--json'),
      ]);
      const ids = (r: CliResult) =>
        (JSON.parse(r.stdout) as Array<{ id: string }>).map(row => row.id);
      expect(ids(support)).to.deep.equal(['WA1', 'WC3']);
      expect(ids(org)).to.deep.equal(['DE5']);
    });

    it('retry --dead queues every dead message again; purge --held deletes every held one; counts printed', async () => {
      const retried = await cli('queue', 'retry', '--dead');
      expect(retried.code, retried.stderr).to.equal(0);
      expect(retried.stdout).to.equal('2 dead messages queued again\n');
      const purged = await cli('queue', 'purge', '--held');
      expect(purged.code, purged.stderr).to.equal(0);
      expect(purged.stdout).to.equal('HF6 purged\n1 message purged\n');
      expect(await spoolFiles(spoolDir, 'dead')).to.deep.equal([]);
      expect(await spoolFiles(spoolDir, 'held')).to.deep.equal([]);
      expect(await spoolFiles(spoolDir, 'queue')).to.deep.equal(
        ['DD4', 'DE5', 'WA1', 'WB2', 'WC3'].map(id => `${id}.json`),
      );
      expect(await spoolFiles(spoolDir, 'msg')).to.not.include('HF6.eml');
    });

    it('purge --mailbox deletes that mailbox in every state, but keeps a message also owed elsewhere, and one being delivered', async () => {
      // claimed by a daemon for an attempt right now
      await spooled('AG7', ['support@example.com'], 'active');
      const purged = await cli('queue', 'purge', '--mailbox', 'mb-support');
      expect(purged.code, purged.stderr).to.equal(0);
      expect(lines(purged.stdout)).to.deep.equal([
        'DD4 purged',
        'HF6 purged',
        'WA1 purged',
        '3 messages purged',
        '1 kept, also owed to another mailbox or domain (purge by ID): WC3',
        '1 being delivered right now, left alone',
      ]);
      expect(await spoolFiles(spoolDir, 'active')).to.deep.equal(['AG7.json']);
      expect(await spoolFiles(spoolDir, 'queue')).to.deep.equal([
        'WB2.json',
        'WC3.json',
      ]);
      expect(await spoolFiles(spoolDir, 'dead')).to.deep.equal(['DE5.json']);
      expect(await spoolFiles(spoolDir, 'msg')).to.deep.equal(
        ['AG7', 'DE5', 'WB2', 'WC3'].map(id => `${id}.eml`),
      );
    });

    it("bad usage exits 2 with the action's usage line, and changes nothing", async () => {
      const results = await Promise.all([
        cli('queue', 'purge'),
        cli('queue', 'retry', '--held'),
        cli('queue', 'shape', '--by', 'sender'),
        cli('queue', 'list', '--mailbox', 'm', '--domain', 'd'),
      ]);
      const expected = [
        ['needs a message ID, --all', 'mailbridge queue purge ID |'],
        ["Unknown option '--held'", 'mailbridge queue retry ID |'],
        ['--by takes mailbox or domain', 'mailbridge queue shape'],
        ['--mailbox or --domain, not both', 'mailbridge queue list'],
      ];
      for (const [i, result] of results.entries()) {
        expect(result.code, result.stderr).to.equal(2);
        expect(result.stdout).to.equal('');
        expect(result.stderr).to.include(expected[i]![0]);
        expect(result.stderr).to.include(`Usage: ${expected[i]![1]}`);
      }
      expect(await spoolFiles(spoolDir, 'queue')).to.have.length(3);
    });
  });

  describe('on the spool of a running daemon', () => {
    const t = useBridge();

    function onBridge(...args: string[]): Promise<CliResult> {
      return runCli(args, { MAILBRIDGE_SPOOL_DIR: t.bridge.spoolDir });
    }

    async function send(to: string, subject: string): Promise<string> {
      const sent = await sendRaw({
        port: t.bridge.smtpPort,
        to: [to],
        raw: makeMessage({
          From: 'Jane <jane@example.net>',
          To: to,
          Subject: subject,
          'Message-ID': `<${to.split('@')[0]}-${Date.now()}@example.net>`,
        }),
      });
      expect(sent.code).to.equal(250);
      return queueIdOf(sent.response);
    }

    it("retry --mailbox: that mailbox's waiting messages are due now, and the daemon posts them", async () => {
      t.api.setDefault({ status: 503 });
      await t.start({
        api: apiAt(t.api.url),
        routes: ROUTE_TABLE,
        delivery: {
          scanIntervalMs: 50,
          // one attempt, then an hour's wait: only the retry can bring them back today
          retry: { initialDelayMs: HOUR, maxDelayMs: HOUR },
        },
      });
      const support = await send('support@example.com', 'one');
      const sales = await send('a@example.org', 'two');
      for (const id of [support, sales]) {
        await t.bridge.waitForLog(
          l => l.message === 'delivery deferred' && l.queueId === id,
        );
      }
      t.api.setDefault({ status: 204 });
      const retried = await onBridge(
        'queue',
        'retry',
        '--mailbox',
        'mb-support',
      );
      expect(retried.code, retried.stderr).to.equal(0);
      // alone, --mailbox takes the dead messages of that mailbox too
      expect(retried.stdout).to.equal(
        '1 message due now\n0 dead messages queued again\n',
      );
      await t.bridge.waitForLog(
        l => l.message === 'message delivered' && l.queueId === support,
      );
      const list = await onBridge('queue', 'list', '--json');
      expect(
        (JSON.parse(list.stdout) as Array<{ id: string }>).map(r => r.id),
      ).to.deep.equal([sales]);
      // the first attempts (503) of both, then the retried one only
      const posted = t.api.requests.map(r => r.body.mailbox_id);
      expect(posted).to.have.length(3);
      expect(posted.slice(0, 2).sort()).to.deep.equal([
        'mb-sales',
        'mb-support',
      ]);
      expect(posted[2]).to.equal('mb-support');
    });

    it('show prints a dead message for a person: state, envelope, decoded headers, routes, history', async () => {
      t.api.setDefault({
        status: 400,
        body: { errors: [{ code: 'bad_field', message: 'no' }] },
      });
      await t.start({ api: apiAt(t.api.url), routes: ROUTE_TABLE });
      const id = await send(
        'support@example.com',
        '=?utf-8?q?Caf=C3=A9_=E2=98=95?=',
      );
      await t.bridge.waitForLog(
        l => l.message === 'message dead' && l.queueId === id,
      );
      const shown = await onBridge('queue', 'show', id);
      expect(shown.code, shown.stderr).to.equal(0);
      const out = lines(shown.stdout);
      expect(out[0]).to.equal(`Message:      ${id}`);
      expect(out).to.include('State:        dead (dead/)');
      expect(out).to.include('Sender:       <sender@example.net>');
      expect(out).to.include('Recipients:   support@example.com');
      expect(out).to.include('Attempts:     1');
      expect(out.find(l => l.startsWith('Arrival:'))).to.match(
        /^Arrival: +[\d-]+ [\d:]+ UTC from \[127\.0\.0\.1\] \(helo /,
      );
      expect(out.find(l => l.startsWith('Dead:'))).to.match(/400/);
      expect(out).to.include('  Subject: Café ☕');
      expect(out).to.include('  From: Jane <jane@example.net>');
      expect(out.find(l => l.startsWith('Raw file:'))).to.include(
        join(t.bridge.spoolDir, 'msg', `${id}.eml`),
      );
      const routes = out.indexOf('Routes:');
      expect(out[routes + 1]).to.match(/^ +# +MAILBOX +RECIPIENTS +STATUS$/);
      expect(out[routes + 2]).to.match(
        /^ +0 +mb-support +support@example\.com +failed: .*400/,
      );
      expect(out.at(-1)).to.match(/^ {2}[\d-]+ [\d:]+ {2}#0 .*400/);
    });
  });

  describe('help and version', () => {
    it('each command answers --help or -h with its own usage and exit codes', async () => {
      const asked = [
        ['serve', '--help'],
        ['queue', 'shape', '-h'],
        ['help', 'queue', 'retry'],
        ['inject', '-h'],
      ];
      const results = await Promise.all(asked.map(args => runCli(args)));
      const usages = [
        'Usage: mailbridge serve [--config FILE]',
        'Usage: mailbridge queue shape [--by mailbox|domain]',
        'Usage: mailbridge queue retry ID | [--all] [--dead]',
        'Usage: mailbridge inject FILE.eml --rcpt ADDR',
      ];
      for (const [i, result] of results.entries()) {
        expect(result.code, result.stderr).to.equal(0);
        expect(result.stdout.startsWith(usages[i]!), result.stdout).to.equal(
          true,
        );
        expect(result.stdout).to.include('Exit status:');
        expect(result.stdout).to.include('2  bad usage');
      }
    });

    it('--version prints the package version; an option of another command exits 2', async () => {
      const { version } = JSON.parse(
        await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
      ) as { version: string };
      const [shown, wrong] = await Promise.all([
        runCli(['--version']),
        runCli(['serve', '--rcpt', 'a@b']),
      ]);
      expect(shown.code).to.equal(0);
      expect(shown.stdout).to.equal(`${version}\n`);
      expect(wrong.code).to.equal(2);
      expect(wrong.stderr).to.include("Unknown option '--rcpt'");
      expect(wrong.stderr).to.include(
        'Usage: mailbridge serve [--config FILE]',
      );
    });
  });
});
