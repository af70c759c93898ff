// The held store from the outside: `queue held` (text and --json), `show`, `replay` (released,
// and posted by a running daemon), `purge`, and the daemon deleting held messages after
// delivery.heldRetentionMs. No policy holds a message yet: held entries are made through the
// spool's own moves and the real decision (spoolHeldMessage).
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteConfig } from '../../src/config/schema.js';
import type { QueueEntry } from '../../src/spool/queue-entry.js';
import { Spool } from '../../src/spool/spool.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import {
  ManualClock,
  readEntry,
  spoolHeldMessage,
  writeSpooledEntry,
} from '../helpers/queue-tools.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { makeMessage } from '../helpers/smtp-client.js';
import { spoolFiles } from '../helpers/wait-for.js';

const DAY = 86_400_000;

/** Two routes, as the configuration says them */
const ROUTE_TABLE = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: '*@example.org', mailbox_id: 'mb-sales' },
];

/** and as a loaded configuration gives them. */
const ROUTES = ROUTE_TABLE.map(r => ({
  ...r,
  thread_from_subaddress: false,
  fields: {},
})) as RouteConfig[];

const RCPT = ['support@example.com', 'a@example.org'];

function raw(id: string): string {
  return makeMessage({
    From: 'jane@example.net',
    To: RCPT.join(', '),
    Subject: `Held ${id}`,
    'Message-ID': `<${id}@example.net>`,
  });
}

/** The fields of a `held` row: those of `dead`, reason included. */
const HELD_KEYS = [
  'id',
  'messageId',
  'from',
  'recipients',
  'attempts',
  'nextAttemptAt',
  'lastError',
  'reason',
];

function lines(text: string): string[] {
  return text.split('\n').filter(line => line.trim());
}

describe('queue held, replay, purge and retention of held messages', function () {
  // every command is a fresh node process (about 0.8 s each, several under load), up to four a test
  this.timeout(60_000);

  describe('on a stopped spool', () => {
    let spoolDir: string;

    beforeEach(async () => {
      spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-queue-held-'));
    });
    afterEach(async () => {
      await rm(spoolDir, { recursive: true, force: true });
    });

    function cli(...args: string[]): Promise<CliResult> {
      return runCli(args, { MAILBRIDGE_SPOOL_DIR: spoolDir });
    }

    const hold = (id: string, reason: string, held?: number[]) =>
      spoolHeldMessage({
        dir: spoolDir,
        id,
        raw: raw(id),
        rcptTo: RCPT,
        routes: ROUTES,
        messageId: `<${id}@example.net>`,
        reason,
        held,
      });

    it('held lists held messages only, a line each, ID first, reason last; --json with reason', async () => {
      await hold('HA1', 'auto-reply');
      await hold('HB2', 'bulk mail', [1]);
      await writeSpooledEntry({
        dir: spoolDir,
        id: 'QC3',
        raw: raw('QC3'),
        rcptTo: RCPT,
        routes: ROUTES,
        messageId: '<QC3@example.net>',
        state: 'queue',
      });

      const text = await cli('queue', 'held');
      expect(text.code, text.stderr).to.equal(0);
      const [header, ...rows] = lines(text.stdout);
      expect(header).to.match(
        /^ID +ARRIVAL \(UTC\) +HELD SINCE +SIZE +TRIES +FROM +RECIPIENTS +REASON$/,
      );
      expect(rows.map(l => l.split(/\s+/)[0])).to.deep.equal([
        'HA1',
        'HB2',
        '--',
      ]);
      expect(rows[0]).to.match(
        /^HA1 +[\d-]+ [\d:]+ +[\d-]+ [\d:]+ +\d+ B +1 +sender@example\.net +support@example\.com, a@example\.org +auto-reply$/,
      );
      expect(rows[1]).to.match(/ {2}bulk mail$/);
      expect(rows[2]).to.match(/^-- 2 messages, 4 recipients, /);

      const json = await cli('queue', 'held', '--json');
      expect(json.code, json.stderr).to.equal(0);
      const listed = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
      expect(listed).to.have.length(2);
      for (const row of listed) expect(row).to.have.all.keys(HELD_KEYS);
      expect(listed[1]).to.deep.equal({
        id: 'HB2',
        messageId: '<HB2@example.net>',
        from: 'sender@example.net',
        recipients: RCPT,
        attempts: 1,
        nextAttemptAt: null,
        lastError: null,
        reason: 'bulk mail',
      });

      // list and dead do not show them
      const list = await cli('queue', 'list');
      expect(lines(list.stdout).map(l => l.split(/\s+/)[0])).to.deep.equal([
        'ID',
        'QC3',
        '--',
      ]);
      const dead = await cli('queue', 'dead', '--json');
      expect(JSON.parse(dead.stdout)).to.deep.equal([]);
    });

    it('held on an empty spool: a line that says so, [] with --json', async () => {
      await new Spool(spoolDir).init();
      const text = await cli('queue', 'held');
      expect(text.code, text.stderr).to.equal(0);
      expect(text.stdout).to.equal('no held messages\n');
      const json = await cli('queue', 'held', '--json');
      expect(JSON.parse(json.stdout)).to.deep.equal([]);
    });

    it('show --json prints a held message: state held, its reason and routes', async () => {
      await hold('HS1', 'DMARC fail (quarantine)', [0]);
      const shown = await cli('queue', 'show', 'HS1', '--json');
      expect(shown.code, shown.stderr).to.equal(0);
      const out = JSON.parse(shown.stdout) as QueueEntry & {
        state: string;
        raw: string;
      };
      expect(out.state).to.equal('held');
      expect(out.raw).to.equal(join(spoolDir, 'msg', 'HS1.eml'));
      expect(out.held?.reason).to.equal('DMARC fail (quarantine)');
      expect(out.routes.map(r => [r.status, r.heldReason])).to.deep.equal([
        ['held', 'DMARC fail (quarantine)'],
        ['delivered', undefined],
      ]);
    });

    it('replay moves a held message to queue/: its held routes pending and released, due now', async () => {
      await hold('HR1', 'bulk mail', [1]);
      const before = Date.now();
      const replay = await cli('queue', 'replay', 'HR1');
      expect(replay.code, replay.stderr).to.equal(0);
      expect(replay.stdout).to.equal('HR1 released and queued again\n');
      expect(await spoolFiles(spoolDir, 'held')).to.deep.equal([]);
      expect(await spoolFiles(spoolDir, 'msg')).to.deep.equal(['HR1.eml']);
      const entry = (await readEntry(spoolDir, 'queue', 'HR1'))!;
      expect(entry.held).to.equal(undefined);
      expect(entry.routes.map(r => [r.status, r.released])).to.deep.equal([
        ['delivered', undefined],
        ['pending', true],
      ]);
      expect(entry.nextAttemptAt).to.be.at.least(before);
      expect(entry.attempts).to.equal(0);
      // the history of the hold stays
      expect(entry.history.at(-1)?.results).to.deep.equal({
        0: 'delivered',
        1: 'held: bulk mail',
      });
    });

    it('retry of a held message exits 1 and points to replay', async () => {
      await hold('HT1', 'auto-reply');
      const retry = await cli('queue', 'retry', 'HT1');
      expect(retry.code).to.equal(1);
      expect(retry.stderr).to.include('HT1 is in held/ (use queue replay)');
      expect(await spoolFiles(spoolDir, 'held')).to.deep.equal(['HT1.json']);
    });

    it('purge deletes a held message: its state and its raw file', async () => {
      await hold('HP1', 'auto-reply');
      await hold('HP2', 'auto-reply');
      const purge = await cli('queue', 'purge', 'HP1');
      expect(purge.code, purge.stderr).to.equal(0);
      expect(purge.stdout).to.equal('HP1 purged\n');
      expect(await spoolFiles(spoolDir, 'held')).to.deep.equal(['HP2.json']);
      expect(await spoolFiles(spoolDir, 'msg')).to.deep.equal(['HP2.eml']);
      expect(await spoolFiles(spoolDir, 'tmp')).to.deep.equal([]);
      const again = await cli('queue', 'purge', 'HP1');
      expect(again.code).to.equal(1);
      expect(again.stderr).to.include('no message HP1 in the spool');
    });

    it('--help names queue held and what replay and purge do with held messages', async () => {
      const help = await cli('queue', '--help');
      expect(help.code).to.equal(0);
      expect(help.stdout).to.include('queue list|dead|held [--json]');
      expect(help.stdout).to.include('delete a waiting, dead or held message');
    });
  });

  describe('on the spool of a running daemon', () => {
    const t = useBridge();

    function onBridge(...args: string[]): Promise<CliResult> {
      return runCli(args, { MAILBRIDGE_SPOOL_DIR: t.bridge.spoolDir });
    }

    it('a replayed held message is posted: its released route only, then removed', async () => {
      await t.start({
        api: apiAt(t.api.url),
        delivery: { scanIntervalMs: 50 },
        routes: ROUTE_TABLE,
      });
      await spoolHeldMessage({
        dir: t.bridge.spoolDir,
        id: 'HD1',
        raw: raw('HD1'),
        rcptTo: RCPT,
        routes: t.bridge.config.routes,
        messageId: '<HD1@example.net>',
        reason: 'bulk mail',
        held: [1],
      });
      const replay = await onBridge('queue', 'replay', 'HD1');
      expect(replay.code, replay.stderr).to.equal(0);
      await t.bridge.waitForLog(
        l => l.message === 'message delivered' && l.queueId === 'HD1',
      );
      expect(t.api.requests).to.have.length(1);
      expect(t.api.requests[0]?.body).to.include({
        mailbox_id: 'mb-sales',
        ext_msg_id: '<HD1@example.net>',
        subject: 'Held HD1',
      });
      for (const folder of ['held', 'queue', 'msg', 'dead']) {
        expect(await spoolFiles(t.bridge.spoolDir, folder)).to.deep.equal([]);
      }
    });

    it('deletes held messages past delivery.heldRetentionMs (its clock), logs and counts each', async () => {
      const clock = new ManualClock(Date.now());
      await t.start(
        {
          api: apiAt(t.api.url),
          delivery: { scanIntervalMs: 50 },
          routes: ROUTE_TABLE,
        },
        { daemon: { now: clock.now } },
      );
      const hold = (id: string, heldAt: number) =>
        spoolHeldMessage({
          dir: t.bridge.spoolDir,
          id,
          raw: raw(id),
          rcptTo: RCPT,
          routes: ROUTES,
          messageId: `<${id}@example.net>`,
          reason: 'auto-reply',
          heldAt,
        });
      // A sorts before B: the sweep that deletes B has judged A already
      await hold('XA1', clock.now() - 5 * DAY);
      await hold('XB2', clock.now() - 10 * DAY);
      // the default retention is 30 days: 21 days on, B (held 31 days ago) expires, A does not
      clock.advance(21 * DAY);
      const line = await t.bridge.waitForLog(
        l => l.message === 'held message expired',
      );
      expect(line).to.include({
        level: 'info',
        queueId: 'XB2',
        messageId: '<XB2@example.net>',
        reason: 'auto-reply',
      });
      expect(await spoolFiles(t.bridge.spoolDir, 'held')).to.deep.equal([
        'XA1.json',
      ]);
      expect(await spoolFiles(t.bridge.spoolDir, 'msg')).to.deep.equal([
        'XA1.eml',
      ]);
      const counted = await t.bridge.daemon.metrics.registry
        .getSingleMetric('mailbridge_held_expired_total')
        ?.get();
      expect(counted?.values[0]?.value).to.equal(1);
      expect(t.api.requests).to.have.length(0);
      expect(
        t.bridge.logs.filter(l => l.message === 'held message expired'),
      ).to.have.length(1);
    });
  });
});
