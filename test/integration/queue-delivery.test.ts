// Queue mode end to end: retries, Retry-After, dead letters, pause on 401, dedupe, spool safety.
import { expect } from 'chai';
import { once } from 'node:events';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  apiAt,
  useBridge,
  type BridgeOptions,
  type TestBridge,
} from '../helpers/bridge.js';
import type { RecordedRequest } from '../helpers/fake-api.js';
import {
  listSpool,
  ManualClock,
  queueIdOf,
  readEntry,
  sequence,
  watchScans,
  writeSpooledEntry,
} from '../helpers/queue-tools.js';
import { runCli } from '../helpers/run-cli.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

const HOUR = 3_600_000;

/** Small delays and a quick rescan, so retries happen within a test. */
const FAST_DELIVERY = {
  scanIntervalMs: 100,
  retry: { initialDelayMs: 20, maxDelayMs: 200 },
};

type Line = Record<string, unknown>;

function message(id: string, subject = 'queued', body?: string): string {
  return makeMessage(
    {
      From: 'jane@example.net',
      To: 'support@example.com',
      Subject: subject,
      'Message-ID': `<${id}@example.net>`,
    },
    body,
  );
}

/** A message over 128 KiB: received into tmp/ and committed as a file of its own. */
function largeMessage(id: string): string {
  return message(id, 'large', `${'x'.repeat(998)}\r\n`.repeat(140));
}

describe('queue mode: delivery from the spool', () => {
  const t = useBridge();

  /** A bridge on the stand-in with fast retries plus `overrides` (delivery keys merged). */
  async function start(
    overrides: Record<string, unknown> = {},
    options: BridgeOptions = {},
  ): Promise<TestBridge> {
    const { delivery, ...rest } = overrides as { delivery?: object };
    return t.start(
      {
        api: apiAt(t.api.url),
        delivery: { ...FAST_DELIVERY, ...delivery },
        ...rest,
      },
      options,
    );
  }

  /** Sends `raw` and returns the queue id of its "250 ... queued as ID". */
  async function queue(
    bridge: TestBridge,
    raw: string,
    to = ['support@example.com'],
  ): Promise<string> {
    const result = await sendRaw({ port: bridge.smtpPort, to, raw });
    expect(result.code, result.response).to.equal(250);
    expect(result.response).to.match(/^250 .*queued as [0-9A-Z]+$/);
    return queueIdOf(result.response);
  }

  /** A worker's log line about message `id`. */
  function workerLine(
    bridge: TestBridge,
    id: string,
    message: string,
    extra: (line: Line) => boolean = () => true,
  ): Promise<Line> {
    return bridge.waitForLog(
      l =>
        l.stage === 'deliver' &&
        l.queueId === id &&
        l.message === message &&
        extra(l),
    );
  }

  /** The worker's "delivery deferred" line after attempt number `attempts`. */
  function deferred(bridge: TestBridge, id: string, attempts: number) {
    return workerLine(
      bridge,
      id,
      'delivery deferred',
      l => l.attempts === attempts,
    );
  }

  function posts(match: (r: RecordedRequest) => boolean): RecordedRequest[] {
    return t.api.requests.filter(match);
  }

  function postsOf(id: string): RecordedRequest[] {
    return posts(r => r.body.ext_msg_id === `<${id}@example.net>`);
  }

  async function expectSpoolEmpty(bridge: TestBridge): Promise<void> {
    const spool = await listSpool(bridge.spoolDir);
    expect(spool).to.deep.equal({
      tmp: [],
      msg: [],
      queue: [],
      active: [],
      dead: [],
    });
  }

  const spoolEnv = (bridge: TestBridge) => ({
    MAILBRIDGE_SPOOL_DIR: bridge.spoolDir,
  });

  describe('retries', () => {
    it('API down (503 three times), then up: delivered exactly once, spool empty', async () => {
      const bridge = await start();
      const scans = watchScans(bridge.daemon.spool);
      t.api.reply({ status: 503 }, { status: 503 }, { status: 503 });
      const id = await queue(bridge, message('down-then-up'));

      const done = await workerLine(bridge, id, 'message delivered');
      expect(done.attempts).to.equal(4);
      expect(postsOf('down-then-up')).to.have.length(4);
      for (let n = 1; n <= 3; n++) {
        const line = await deferred(bridge, id, n);
        expect(line.error).to.equal('API HTTP 503');
      }
      // two more rescans of the spool post nothing more
      await scans.next(2);
      expect(postsOf('down-then-up')).to.have.length(4);
      expect(t.api.requests).to.have.length(4);
      await expectSpoolEmpty(bridge);
    });

    it('429 with Retry-After: 1 (seconds): the next attempt waits for it', async () => {
      const bridge = await start();
      const arrivals: number[] = [];
      t.api.on('request', () => arrivals.push(Date.now()));
      t.api.reply({ status: 429, headers: { 'retry-after': '1' } });
      const id = await queue(bridge, message('retry-after-seconds'));

      const line = await deferred(bridge, id, 1);
      const next = Date.parse(line.nextAttemptAt as string);
      expect(next).to.be.at.least(arrivals[0]! + 1000);
      const waiting = await readEntry(bridge.spoolDir, 'queue', id);
      expect(waiting?.nextAttemptAt).to.equal(next);
      expect(waiting?.lastError).to.equal('API HTTP 429');

      await workerLine(bridge, id, 'message delivered');
      expect(arrivals).to.have.length(2);
      expect(arrivals[1]).to.be.at.least(next);
    });

    it('429 with Retry-After as an HTTP date: scheduled at that date', async () => {
      const bridge = await start();
      // whole seconds, 3 to 4 s ahead: later than any backoff of this configuration
      const date = new Date(Math.floor(Date.now() / 1000) * 1000 + 4000);
      t.api.reply({
        status: 429,
        headers: { 'retry-after': date.toUTCString() },
      });
      const id = await queue(bridge, message('retry-after-date'));

      const line = await deferred(bridge, id, 1);
      expect(line.nextAttemptAt).to.equal(date.toISOString());
      const waiting = await readEntry(bridge.spoolDir, 'queue', id);
      expect(waiting?.nextAttemptAt).to.equal(date.getTime());
      expect(waiting?.attempts).to.equal(1);
      expect(t.api.requests).to.have.length(1);
    });

    it("Retry-After is counted on the daemon's clock (the injected one)", async () => {
      const clock = new ManualClock(Date.now() + HOUR);
      const bridge = await start(
        {},
        { daemon: { now: clock.now, random: () => 0.5 } },
      );
      t.api.reply({ status: 429, headers: { 'retry-after': '30' } });
      const id = await queue(bridge, message('retry-after-clock'));
      const line = await deferred(bridge, id, 1);
      expect(line.nextAttemptAt).to.equal(
        new Date(clock.now() + 30_000).toISOString(),
      );
    });

    it('500s: retried after growing, capped, jittered delays (injected clock and randomness)', async () => {
      // the daemon's clock stands still an hour ahead, so new mail is due at once
      const clock = new ManualClock(Date.now() + HOUR);
      const random = sequence(0.5, 0.25, 0.999, 0.5, 0.5);
      const bridge = await start(
        {
          delivery: {
            retry: { initialDelayMs: 40, multiplier: 2, maxDelayMs: 200 },
          },
        },
        { daemon: { now: clock.now, random } },
      );
      t.api.setDefault({ status: 500 });
      const id = await queue(bridge, message('growing'));

      // ceiling min(200, 40 * 2^(n-1)) times the random value, rounded down
      const delays = [20, 20, 159, 100, 100];
      for (const [i, delay] of delays.entries()) {
        const attempt = i + 1;
        const line = await deferred(bridge, id, attempt);
        const expected = clock.now() + delay;
        expect(line.nextAttemptAt, `attempt ${attempt}`).to.equal(
          new Date(expected).toISOString(),
        );
        const waiting = await readEntry(bridge.spoolDir, 'queue', id);
        expect(waiting?.nextAttemptAt).to.equal(expected);
        expect(waiting?.attempts).to.equal(attempt);
        // the clock has not moved: no attempt beyond this one yet
        expect(t.api.requests).to.have.length(attempt);
        if (attempt === delays.length) t.api.setDefault({ status: 204 });
        clock.set(expected);
      }
      const done = await workerLine(bridge, id, 'message delivered');
      expect(done.attempts).to.equal(6);
      expect(t.api.requests).to.have.length(6);
      await expectSpoolEmpty(bridge);
    });

    it('maxAgeMs reached: dead, with an "expired" reason', async () => {
      const clock = new ManualClock(Date.now() + HOUR);
      const bridge = await start(
        { delivery: { retry: { maxAgeMs: 2 * HOUR } } },
        { daemon: { now: clock.now, random: () => 0 } },
      );
      t.api.setDefault({ status: 503 });
      const id = await queue(bridge, message('too-old'));
      await deferred(bridge, id, 1);

      clock.advance(2 * HOUR);
      const line = await workerLine(bridge, id, 'message dead');
      expect(line.reason).to.match(/^expired after 2 attempts in \d+ s: /);
      expect(line.reason).to.include('API HTTP 503');
      const dead = await readEntry(bridge.spoolDir, 'dead', id);
      expect(dead?.dead?.reason).to.equal(line.reason);
      expect(dead?.dead?.status).to.equal(503);
      expect(dead?.attempts).to.equal(2);
      const spool = await listSpool(bridge.spoolDir);
      expect(spool.queue).to.deep.equal([]);
      expect(spool.msg).to.deep.equal([`${id}.eml`]);
      expect(t.api.requests).to.have.length(2);
    });
  });

  describe('dead letters and operator commands', () => {
    it('400: dead at once, listed by queue dead --json, replayed and delivered', async () => {
      const bridge = await start();
      const errors = [
        {
          code: 'invalid_mailbox',
          message: 'mailbox unknown',
          deprecated: false,
          will_be_deprecated: false,
        },
      ];
      t.api.reply({ status: 400, body: { errors } });
      const id = await queue(bridge, message('refused'));
      const line = await workerLine(bridge, id, 'message dead');
      expect(line.reason).to.equal('refused: API HTTP 400');
      expect(t.api.requests).to.have.length(1);

      const listed = await runCli(
        ['queue', 'dead', '--json'],
        spoolEnv(bridge),
      );
      expect(listed.code, listed.stderr).to.equal(0);
      const rows = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({
        id,
        messageId: '<refused@example.net>',
        from: 'sender@example.net',
        attempts: 1,
        nextAttemptAt: null,
        lastError: 'API HTTP 400',
      });
      expect(rows[0]?.recipients).to.deep.equal(['support@example.com']);
      expect(rows[0]).to.include.all.keys(
        'id',
        'messageId',
        'from',
        'recipients',
        'attempts',
        'nextAttemptAt',
        'lastError',
      );

      const dead = await readEntry(bridge.spoolDir, 'dead', id);
      expect(dead?.dead?.status).to.equal(400);
      expect(dead?.dead?.apiErrors).to.deep.equal(errors);
      expect(dead?.history).to.have.length(1);
      expect(dead?.history[0]?.results).to.deep.equal({ 0: 'API HTTP 400' });
      expect(dead?.routes[0]?.status).to.equal('failed');

      const replay = await runCli(['queue', 'replay', id], spoolEnv(bridge));
      expect(replay.code, replay.stderr).to.equal(0);
      expect(replay.stdout).to.equal(`${id} queued again\n`);
      await workerLine(bridge, id, 'message delivered');
      expect(postsOf('refused')).to.have.length(2);
      await expectSpoolEmpty(bridge);
    });

    it('the dead gauge counts a message as it dies, and a recount sees a purge', async () => {
      const clock = new ManualClock(Date.now() + HOUR);
      const bridge = await start({}, { daemon: { now: clock.now } });
      const scans = watchScans(bridge.daemon.spool);
      const base = `http://127.0.0.1:${bridge.daemon.httpPort}`;
      const deadGauge = async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return /^mailbridge_spool_messages\{state="dead"\} (\d+)$/m.exec(
          text,
        )?.[1];
      };
      t.api.reply({ status: 400 });
      const id = await queue(bridge, message('gauge'));
      await workerLine(bridge, id, 'message dead');
      expect(await deadGauge()).to.equal('1');

      const purge = await runCli(['queue', 'purge', id], spoolEnv(bridge));
      expect(purge.code, purge.stderr).to.equal(0);
      // dead/ is recounted once a minute, not listed by every scan
      await scans.next();
      expect(await deadGauge()).to.equal('1');
      clock.advance(61_000);
      await scans.next(2);
      expect(await deadGauge()).to.equal('0');
    });

    it('queue retry ID makes a message waiting an hour due now', async () => {
      const bridge = await start();
      t.api.reply({ status: 503, headers: { 'retry-after': '3600' } });
      const id = await queue(bridge, message('far-retry'));
      const line = await deferred(bridge, id, 1);
      expect(Date.parse(line.nextAttemptAt as string)).to.be.greaterThan(
        Date.now() + HOUR - 60_000,
      );

      const retry = await runCli(['queue', 'retry', id], spoolEnv(bridge));
      expect(retry.code, retry.stderr).to.equal(0);
      expect(retry.stdout).to.equal(`${id} due now\n`);
      await workerLine(bridge, id, 'message delivered');
      expect(postsOf('far-retry')).to.have.length(2);
      await expectSpoolEmpty(bridge);
    });

    it('queue purge ID removes a waiting message for good', async () => {
      const bridge = await start();
      const scans = watchScans(bridge.daemon.spool);
      t.api.reply({ status: 503, headers: { 'retry-after': '3600' } });
      const id = await queue(bridge, message('purged'));
      await deferred(bridge, id, 1);

      const purge = await runCli(['queue', 'purge', id], spoolEnv(bridge));
      expect(purge.code, purge.stderr).to.equal(0);
      expect(purge.stdout).to.equal(`${id} purged\n`);
      await expectSpoolEmpty(bridge);
      await scans.next(2);
      expect(t.api.requests).to.have.length(1);
      const show = await runCli(['queue', 'show', id], spoolEnv(bridge));
      expect(show.code).to.equal(1);
    });

    it('inject FILE --rcpt into a running daemon: delivered after its rescan', async () => {
      const bridge = await start();
      const dir = await mkdtemp(join(tmpdir(), 'mailbridge-inject-'));
      try {
        const file = join(dir, 'backfill.eml');
        await writeFile(file, message('injected', 'backfill'));
        const injected = await runCli(
          ['inject', file, '--rcpt', 'support@example.com'],
          spoolEnv(bridge),
        );
        expect(injected.code, injected.stderr).to.equal(0);
        const id = queueIdOf(injected.stdout.trim());
        await workerLine(bridge, id, 'message delivered');
        const [post] = postsOf('injected');
        expect(post?.body).to.include({
          subject: 'backfill',
          to: 'support@example.com',
        });
        expect(t.api.requests).to.have.length(1);
        await expectSpoolEmpty(bridge);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('pause on 401', () => {
    it('holds every message until a probe succeeds, ready for mail, paused in /status and the metric', async () => {
      const clock = new ManualClock(Date.now() + HOUR);
      const bridge = await start(
        {
          delivery: {
            retry: { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 8000 },
          },
        },
        { daemon: { now: clock.now, random: () => 0.5 } },
      );
      const base = `http://127.0.0.1:${bridge.daemon.httpPort}`;
      const scans = watchScans(bridge.daemon.spool);
      t.api.setDefault({ status: 401 });
      const paused = () =>
        bridge.logs.filter(l =>
          String(l.message).startsWith('delivery paused'),
        );

      const first = await queue(bridge, message('pause-1'));
      await deferred(bridge, first, 1);
      expect(paused()).to.have.length(1);
      expect(paused()[0]?.level).to.equal('error');

      const second = await queue(bridge, message('pause-2'));
      await scans.next(2);
      expect(t.api.requests).to.have.length(1);
      expect(postsOf('pause-2')).to.have.length(0);
      // accepted during the pause: parked in queue/ at once, not held in the claim folder
      const waiting = await listSpool(bridge.spoolDir);
      expect(waiting.queue.sort()).to.deep.equal(
        [`${first}.json`, `${second}.json`].sort(),
      );
      expect(waiting.active).to.deep.equal([]);

      // still takes mail: readiness is not delivery
      expect((await fetch(`${base}/readyz`)).status).to.equal(200);
      const status = (await (await fetch(`${base}/status`)).json()) as {
        ready: boolean;
        delivery: { paused: boolean; reason: string };
        spool: Record<string, number>;
      };
      expect(status.ready).to.equal(true);
      expect(status.delivery.paused).to.equal(true);
      expect(status.delivery.reason).to.match(/^delivery paused: .*HTTP 401/);
      expect(status.spool.queue).to.equal(2);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).to.match(/^mailbridge_delivery_paused 1$/m);

      // the probe after the pause: still 401, so still paused, and no second alert
      const before = bridge.logs.length;
      clock.advance(1000);
      await t.api.waitForRequests(2);
      await bridge.waitForLog(
        l =>
          l.message === 'delivery deferred' && bridge.logs.indexOf(l) >= before,
      );
      expect(paused()).to.have.length(1);
      expect((await fetch(`${base}/readyz`)).status).to.equal(200);

      // the API takes our token again: the next probe resumes delivery for both
      t.api.setDefault({ status: 204 });
      clock.advance(HOUR);
      await workerLine(bridge, first, 'message delivered');
      await workerLine(bridge, second, 'message delivered');
      expect(
        bridge.logs.filter(l => l.message === 'delivery resumed'),
      ).to.have.length(1);
      expect(paused()).to.have.length(1);
      const delivered = t.api.requests.slice(2).map(r => r.body.ext_msg_id);
      expect(delivered).to.have.members([
        '<pause-1@example.net>',
        '<pause-2@example.net>',
      ]);
      const resumed = (await (await fetch(`${base}/status`)).json()) as {
        delivery: { paused: boolean; reason: string | null };
      };
      expect(resumed.delivery).to.include({ paused: false, reason: null });
      const after = await (await fetch(`${base}/metrics`)).text();
      expect(after).to.match(/^mailbridge_delivery_paused 0$/m);
      await expectSpoolEmpty(bridge);
    });
  });

  describe('fresh messages (delivered from the claim folder that accepted them)', () => {
    it('one accepted is posted and removed without ever entering queue/ or msg/', async () => {
      const bridge = await start();
      const seen = new Set<string>();
      // every name any spool folder held while the message went through
      const watchers = ['queue', 'msg'].map(folder =>
        watch(join(bridge.spoolDir, folder), (_event, name) => {
          if (name) seen.add(`${folder}/${name}`);
        }),
      );
      try {
        const id = await queue(bridge, message('fresh-1'));
        await workerLine(bridge, id, 'message delivered');
      } finally {
        for (const w of watchers) w.close();
      }
      expect([...seen]).to.deep.equal([]);
      await expectSpoolEmpty(bridge);
    });

    it('those waiting for their first attempt when a pause starts are parked in queue/', async () => {
      const bridge = await start({
        api: { ...apiAt(t.api.url), concurrency: 1 },
        // no probe of the pause while the spool is looked at (20 ms was a race under load)
        delivery: { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } },
      });
      // the first post holds the only slot, unanswered, until the others are accepted; then
      // its 401 starts the pause (a delay instead raced the senders on a loaded machine)
      t.api.reply({ status: 401, stall: true });
      t.api.setDefault({ status: 204 });
      const ids: string[] = [];
      for (const n of [1, 2, 3]) {
        ids.push(await queue(bridge, message(`park-${n}`)));
      }
      await t.api.waitForRequests(1);
      t.api.releaseStalled({ status: 401 });
      await bridge.waitForLog(l =>
        String(l.message).startsWith('delivery paused'),
      );
      await workerLine(bridge, ids[0]!, 'delivery deferred');
      const spool = await listSpool(bridge.spoolDir);
      expect(spool.queue.sort()).to.deep.equal(
        ids.map(id => `${id}.json`).sort(),
      );
      expect(spool.msg.sort()).to.deep.equal(ids.map(id => `${id}.eml`).sort());
      expect(spool.active).to.deep.equal([]);
      expect(t.api.requests).to.have.length(1);
    });
  });

  describe('routes and dedupe', () => {
    const ROUTES = [
      { match: 'a@example.com', mailbox_id: 'mb-a' },
      { match: 'b@example.com', mailbox_id: 'mb-b' },
    ];
    const byMailbox = (mailbox: string) =>
      posts(r => r.body.mailbox_id === mailbox);

    it('two routes, B failing: only B is retried, A posted once', async () => {
      const clock = new ManualClock(Date.now() + HOUR);
      const bridge = await start(
        { routes: ROUTES },
        { daemon: { now: clock.now, random: () => 0.5 } },
      );
      let failB = true;
      t.api.respondWith(r =>
        r.body.mailbox_id === 'mb-b' && failB ? { status: 503 } : undefined,
      );
      const id = await queue(bridge, message('two-routes'), [
        'a@example.com',
        'b@example.com',
      ]);
      await deferred(bridge, id, 1);
      const waiting = await readEntry(bridge.spoolDir, 'queue', id);
      expect(waiting?.routes.map(r => r.status)).to.deep.equal([
        'delivered',
        'pending',
      ]);
      expect(waiting?.routes[1]?.lastError).to.equal('API HTTP 503');
      expect(waiting?.history[0]?.results).to.deep.equal({
        0: 'delivered',
        1: 'API HTTP 503',
      });

      clock.advance(1000);
      await deferred(bridge, id, 2);
      failB = false;
      clock.advance(1000);
      await workerLine(bridge, id, 'message delivered');
      expect(byMailbox('mb-a')).to.have.length(1);
      expect(byMailbox('mb-b')).to.have.length(3);
      await expectSpoolEmpty(bridge);
    });

    it('the same Message-ID to the same mailbox is posted once, across a restart too', async () => {
      const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-dedupe-'));
      const first = await start(
        { routes: ROUTES },
        { spoolDir, keepSpool: true },
      );
      const raw = message('dedupe');
      const a1 = await queue(first, raw, ['a@example.com']);
      await workerLine(first, a1, 'message delivered');
      const a2 = await queue(first, raw, ['a@example.com']);
      await workerLine(first, a2, 'message delivered');
      expect(byMailbox('mb-a')).to.have.length(1);
      await first.close();

      // a second daemon on the same spool remembers the delivery
      const second = await start({ routes: ROUTES }, { spoolDir });
      const a3 = await queue(second, raw, ['a@example.com']);
      await workerLine(second, a3, 'message delivered');
      expect(byMailbox('mb-a')).to.have.length(1);

      // another mailbox has not had it yet
      const b1 = await queue(second, raw, ['b@example.com']);
      await workerLine(second, b1, 'message delivered');
      expect(byMailbox('mb-b')).to.have.length(1);
      expect(byMailbox('mb-b')[0]?.body.ext_msg_id).to.equal(
        '<dedupe@example.net>',
      );
      expect(t.api.requests).to.have.length(2);
    });
  });

  describe('spool safety', () => {
    // a small message is appended to a journal segment in the claim folder active/; a large one
    // is received into tmp/ and committed by a rename into active/
    for (const [folder, syscall, size] of [
      ['active', 'open', 'small'],
      ['tmp', 'open', 'large'],
      ['active', 'rename', 'large'],
    ] as const) {
      const make = size === 'large' ? largeMessage : message;
      it(`${folder}/ cannot be written (a ${size} message): 451 4.3.0, nothing half-written, accepted again once repaired`, async () => {
        const bridge = await start();
        // root ignores permission bits, so a plain file stands where the folder was
        const path = join(bridge.spoolDir, folder);
        await rm(path, { recursive: true });
        await writeFile(path, 'not a folder');

        const refused = await sendRaw({
          port: bridge.smtpPort,
          to: ['support@example.com'],
          raw: make('disk-trouble'),
        });
        expect(refused.code).to.equal(451);
        expect(refused.response).to.match(/^451 4\.3\.0 /);
        // the log names the write that failed, not a failure of the clean-up after it
        const line = await bridge.waitForLog(
          l =>
            l.message ===
            'message deferred: Could not store the message, try again later',
        );
        expect(line.error).to.match(
          new RegExp(`^ENOTDIR: not a directory, ${syscall} `),
        );
        const spool = await listSpool(bridge.spoolDir);
        expect(spool.tmp).to.deep.equal([]);
        expect(spool.msg).to.deep.equal([]);
        expect(spool.queue).to.deep.equal([]);
        expect(spool.active).to.deep.equal([]);

        await rm(path);
        await mkdir(path);
        const id = await queue(bridge, make('disk-repaired'));
        await workerLine(bridge, id, 'message delivered');
        expect(t.api.requests.map(r => r.body.ext_msg_id)).to.deep.equal([
          '<disk-repaired@example.net>',
        ]);
        await expectSpoolEmpty(bridge);
      });
    }

    it('a small message needs no tmp/: accepted and delivered while tmp/ cannot be written', async () => {
      const bridge = await start();
      const tmp = join(bridge.spoolDir, 'tmp');
      await rm(tmp, { recursive: true });
      await writeFile(tmp, 'not a folder');
      const id = await queue(bridge, message('no-tmp'));
      await workerLine(bridge, id, 'message delivered');
      expect(postsOf('no-tmp')).to.have.length(1);
    });

    it('an attempt that cannot be filed goes back to the queue and is filed once repaired', async () => {
      const bridge = await start();
      const dead = join(bridge.spoolDir, 'dead');
      await rm(dead, { recursive: true });
      await writeFile(dead, 'not a folder');
      t.api.setDefault({ status: 400 });
      const id = await queue(bridge, message('unfiled'));
      const failed = await workerLine(bridge, id, 'delivery attempt failed');
      expect(failed.code).to.equal('ENOTDIR');

      // once dead/ works again the next scan finds it back in queue/, not stuck in active/
      await rm(dead);
      await mkdir(dead);
      const line = await workerLine(bridge, id, 'message dead');
      expect(line.reason).to.equal('refused: API HTTP 400');
      const spool = await listSpool(bridge.spoolDir);
      expect(spool.dead).to.deep.equal([`${id}.json`]);
      expect(spool.active).to.deep.equal([]);
      expect(spool.queue).to.deep.equal([]);
      expect(spool.tmp).to.deep.equal([]);
      // the refusal was recorded on the claim before the move failed: not posted again
      expect(postsOf('unfiled')).to.have.length(1);
    });

    it('a client gone mid-DATA leaves nothing in tmp/, msg/ or queue/', async () => {
      const bridge = await start();
      const socket = connect(bridge.smtpPort, '127.0.0.1');
      socket.setEncoding('utf8');
      let replies = '';
      const replyCount = () => (replies.match(/^\d{3} /gm) ?? []).length;
      const waitReplies = async (n: number) => {
        while (replyCount() < n) await once(socket, 'data');
      };
      socket.on('data', (chunk: string) => (replies += chunk));
      await waitReplies(1);
      const commands = [
        'EHLO client.example',
        'MAIL FROM:<jane@example.net>',
        'RCPT TO:<support@example.com>',
        'DATA',
      ];
      for (const [i, command] of commands.entries()) {
        socket.write(`${command}\r\n`);
        await waitReplies(i + 2);
      }
      expect(replies).to.match(/^354 /m);
      socket.write('Subject: cut off\r\n\r\nHalf a mess');
      socket.destroy();

      await bridge.waitForLog(
        l => l.message === 'message aborted: client disconnected during DATA',
      );
      const spool = await listSpool(bridge.spoolDir);
      expect(spool.tmp).to.deep.equal([]);
      expect(spool.msg).to.deep.equal([]);
      expect(spool.queue).to.deep.equal([]);
      expect(spool.active).to.deep.equal([]);
      expect(t.api.requests).to.have.length(0);
    });

    it('recovery at start: active/ delivered, tmp/ and an orphan msg/ file removed', async () => {
      const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-recover-'));
      await writeSpooledEntry({
        dir: spoolDir,
        id: 'RECOVERME01',
        raw: message('recovered', 'left in active'),
        rcptTo: ['support@example.com'],
        routes: [{ match: '*', thread_from_subaddress: false, fields: {} }],
        messageId: '<recovered@example.net>',
        state: 'active',
      });
      await writeFile(join(spoolDir, 'tmp', 'HALFWRITTEN.eml'), 'Subject: x');
      await writeFile(join(spoolDir, 'msg', 'ORPHAN01.eml'), message('orphan'));

      const bridge = await start({}, { spoolDir });
      const recovered = await bridge.waitForLog(
        l => l.message === 'spool recovered after an unclean stop',
      );
      expect(recovered).to.include({
        removedTmp: 1,
        requeued: 1,
        orphans: 1,
        missingRaw: 0,
        damagedSegments: 0,
      });
      await workerLine(bridge, 'RECOVERME01', 'message delivered');
      expect(t.api.requests.map(r => r.body.ext_msg_id)).to.deep.equal([
        '<recovered@example.net>',
      ]);
      expect(t.api.requests[0]?.body.subject).to.equal('left in active');
      await expectSpoolEmpty(bridge);
    });

    it('once close() has begun, a new SMTP connection is refused or told 421', async () => {
      const bridge = await start();
      const closing = bridge.daemon.close();
      const answer = await new Promise<string>(resolve => {
        const socket = connect(bridge.smtpPort, '127.0.0.1');
        socket.setEncoding('utf8');
        socket.once('data', (line: string) => {
          socket.destroy();
          resolve(line);
        });
        socket.once('error', (err: NodeJS.ErrnoException) =>
          resolve(err.code ?? 'error'),
        );
        socket.once('close', () => resolve('closed'));
      });
      expect(answer).to.satisfy(
        (a: string) => a === 'ECONNREFUSED' || /^421 /.test(a),
        answer,
      );
      await closing;
    });
  });
});
