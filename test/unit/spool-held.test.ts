// held/ on a real temporary spool: filed into (claimed and fresh), moved out by an operator's
// command, left alone by recovery (never requeued, its raw files never orphans), and expired by
// HeldExpiry after delivery.heldRetentionMs.
import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { RouteConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { HeldExpiry } from '../../src/queue/held-expiry.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import {
  newQueueEntry,
  releaseEntry,
  type QueueEntry,
} from '../../src/spool/queue-entry.js';
import { spoolHeader } from '../../src/spool/spool-file.js';
import { Spool } from '../../src/spool/spool.js';
import { ManualClock, spoolHeldMessage } from '../helpers/queue-tools.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const DAY = 86_400_000;
const ROUTES: RouteConfig[] = [
  { match: '*', thread_from_subaddress: false, fields: {} },
];
const RAW = 'Subject: held\r\nMessage-ID: <held@example.net>\r\n\r\nHi.\r\n';

describe('Spool: held/', () => {
  let dir: string;
  let spool: Spool;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-held-'));
    spool = await new Spool(dir).init();
  });
  afterEach(async () => {
    spool.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A new entry as it reads back from disk (undefined fields dropped). */
  function entry(id: string): QueueEntry {
    const made = newQueueEntry({
      envelope: {
        id,
        mailFrom: 'jane@example.net',
        rcptTo: ['support@example.com'],
        receivedAt: new Date(NOW).toISOString(),
      },
      groups: groupByRoute(['support@example.com'], ROUTES),
      messageId: '<held@example.net>',
      size: RAW.length,
      now: NOW,
    });
    return JSON.parse(JSON.stringify(made)) as QueueEntry;
  }

  /** The entry as an attempt that held its route leaves it. */
  function heldState(e: QueueEntry, at = NOW): QueueEntry {
    return {
      ...e,
      attempts: 1,
      routes: e.routes.map(r => ({
        ...r,
        status: 'held',
        heldReason: 'auto-reply',
      })),
      held: { reason: 'auto-reply', at: new Date(at).toISOString() },
    };
  }

  async function claimed(id: string): Promise<QueueEntry> {
    const e = entry(id);
    const tmp = spool.tmpMessagePath(id);
    await writeFile(tmp, RAW);
    await spool.commit(e, tmp, 'active');
    return e;
  }

  const files = (folder: string) =>
    readdir(join(dir, folder)).then(names => names.sort());

  it('move active -> held: the state in held/, nothing claimed; find and list say held', async () => {
    const held = heldState(await claimed('H1'));
    await spool.move(held, 'active', 'held');
    expect(await files('held')).to.deep.equal(['H1.json']);
    expect(await files('active')).to.deep.equal([]);
    expect(await files('msg')).to.deep.equal(['H1.eml']);
    expect(await spool.find('H1')).to.deep.equal({
      state: 'held',
      entry: held,
    });
    expect(await spool.list('held')).to.deep.equal([held]);
    expect(await spool.ids('queue')).to.deep.equal([]);
  });

  it('move held -> queue (a replay): the new state written first, the held one dropped', async () => {
    const held = heldState(await claimed('H2'));
    await spool.move(held, 'active', 'held');
    const released = releaseEntry(held, NOW + 1000);
    await spool.move(released, 'held', 'queue');
    expect(await files('held')).to.deep.equal([]);
    expect(await spool.read('queue', 'H2')).to.deep.equal(
      JSON.parse(JSON.stringify(released)),
    );
    expect((await spool.read('queue', 'H2'))?.routes[0]).to.include({
      status: 'pending',
      released: true,
    });
  });

  it('a replay that cannot write its new state leaves the held message in held/', async () => {
    const held = heldState(await claimed('H3'));
    await spool.move(held, 'active', 'held');
    await rm(join(dir, 'queue'), { recursive: true });
    await writeFile(join(dir, 'queue'), '');
    let failure: NodeJS.ErrnoException | undefined;
    await spool
      .move(releaseEntry(held, NOW), 'held', 'queue')
      .catch(err => (failure = err));
    expect(failure?.code).to.equal('ENOTDIR');
    expect(await spool.read('held', 'H3')).to.deep.equal(held);
  });

  it('take out of held/ (purge, expiry): the entry, once', async () => {
    const held = heldState(await claimed('H4'));
    await spool.move(held, 'active', 'held');
    expect(await spool.take('H4', 'held')).to.deep.equal(held);
    expect(await spool.take('H4', 'held')).to.equal(null);
    await spool.remove('H4', null);
    expect(await files('msg')).to.deep.equal([]);
    expect(await files('tmp')).to.deep.equal([]);
  });

  it('recover: held/ entries stay, raw files kept; a move to held/ cut short is finished', async () => {
    const kept = heldState(await claimed('H5'));
    await spool.move(kept, 'active', 'held');
    // the held state written over the claim, the rename into held/ not done yet
    const cut = heldState(await claimed('H6'));
    await writeFile(join(dir, 'active', 'H6.json'), JSON.stringify(cut));
    const report = await new Spool(dir).recover(NOW);
    expect(report.orphans).to.equal(0);
    expect(await files('held')).to.deep.equal(['H5.json', 'H6.json']);
    expect(await files('queue')).to.deep.equal([]);
    expect(await files('active')).to.deep.equal([]);
    expect(await files('msg')).to.deep.equal(['H5.eml', 'H6.eml']);
    expect(await spool.read('held', 'H6')).to.deep.equal(cut);
  });

  it('a fresh file parked into held/: raw to msg/, state to held/', async () => {
    const e = entry('H7');
    // a fresh message's own file: header line and raw bytes, in the claim folder
    const header = spoolHeader(e);
    const tmp = spool.tmpMessagePath('H7');
    await writeFile(tmp, Buffer.concat([header, Buffer.from(RAW)]));
    await spool.commitFresh('H7', tmp);
    await spool.park(
      heldState({ ...e, rawOffset: header.length }, NOW),
      'held',
    );
    expect(await files('held')).to.deep.equal(['H7.json']);
    expect(await files('active')).to.deep.equal([]);
    expect((await spool.find('H7'))?.state).to.equal('held');
  });

  describe('journaled fresh messages', () => {
    async function journaled(id: string): Promise<QueueEntry> {
      return spool.journalFresh(
        { ...entry(id), size: RAW.length },
        Buffer.from(RAW),
      );
    }

    it('park into held/: raw bytes alone in msg/, the record done, listed in held only', async () => {
      const e = await journaled('J1');
      await spool.park(heldState(e), 'held');
      expect(spool.journaled).to.equal(0);
      expect(await readFile(spool.messagePath('J1'), 'utf8')).to.equal(RAW);
      expect(await spool.ids('active')).to.deep.equal([]);
      expect(await spool.ids('held')).to.deep.equal(['J1']);
      const state = (await spool.read('held', 'J1'))!;
      expect(state.rawOffset).to.equal(undefined);
      expect(state.held?.reason).to.equal('auto-reply');
    });

    it('a record whose message has a state in held/ (its done mark lost): listed there, not requeued', async () => {
      const e = await journaled('J2');
      spool.close();
      await writeFile(join(dir, 'msg', 'J2.eml'), RAW);
      await writeFile(
        join(dir, 'held', 'J2.json'),
        JSON.stringify(heldState({ ...e, rawOffset: undefined })),
      );
      const next = await new Spool(dir).init();
      expect(await next.ids('active')).to.deep.equal([]);
      expect(await next.requeueClaims()).to.equal(0);
      expect(await files('queue')).to.deep.equal([]);
      expect(await files('held')).to.deep.equal(['J2.json']);
    });
  });
});

describe('HeldExpiry', () => {
  let dir: string;
  let spool: Spool;
  let clock: ManualClock;
  let lines: Array<Record<string, unknown>>;
  let metrics: ReturnType<typeof createMetrics>;
  let expiry: HeldExpiry;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-held-expiry-'));
    spool = await new Spool(dir).init();
    clock = new ManualClock(NOW);
    lines = [];
    metrics = createMetrics();
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim()) lines.push(JSON.parse(line) as never);
        }
        done();
      },
    });
    expiry = new HeldExpiry({
      spool,
      log: createLogger({ level: 'info', stream }),
      metrics,
      now: clock.now,
      retentionMs: 30 * DAY,
    });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const hold = (id: string, heldAt: number) =>
    spoolHeldMessage({
      dir,
      id,
      raw: RAW,
      rcptTo: ['support@example.com'],
      routes: ROUTES,
      messageId: `<${id}@example.net>`,
      reason: 'bulk',
      heldAt,
    });

  async function metric(name: string, state?: string): Promise<number> {
    const found = (await metrics.registry.getMetricsAsJSON()).find(
      m => m.name === name,
    );
    const values = (found?.values ?? []) as Array<{
      value: number;
      labels: Record<string, string>;
    }>;
    return values.find(v => !state || v.labels.state === state)?.value ?? 0;
  }

  it('deletes what was held longer than retentionMs, by held.at; logs and counts each', async () => {
    await hold('E1', NOW - 31 * DAY);
    await hold('E2', NOW - 29 * DAY);
    await expiry.sweep();
    expect(await spool.ids('held')).to.deep.equal(['E2']);
    expect(await readdir(join(dir, 'msg'))).to.deep.equal(['E2.eml']);
    const expired = lines.filter(l => l.message === 'held message expired');
    expect(expired).to.have.length(1);
    expect(expired[0]).to.include({
      level: 'info',
      queueId: 'E1',
      messageId: '<E1@example.net>',
      reason: 'bulk',
      heldAt: new Date(NOW - 31 * DAY).toISOString(),
    });
    expect(await metric('mailbridge_held_expired_total')).to.equal(1);
    expect(await metric('mailbridge_spool_messages', 'held')).to.equal(1);

    // a day and a bit later the other one's time is up too: it was read once, not again
    clock.advance(DAY + 1);
    await expiry.sweep();
    expect(await spool.ids('held')).to.deep.equal([]);
    expect(await readdir(join(dir, 'msg'))).to.deep.equal([]);
    expect(await metric('mailbridge_held_expired_total')).to.equal(2);
    expect(await metric('mailbridge_spool_messages', 'held')).to.equal(0);
    expect(await readdir(join(dir, 'tmp'))).to.deep.equal([]);
  });

  it('two processes sweeping the same spool: each message deleted once, no error', async () => {
    for (const id of ['C1', 'C2', 'C3']) await hold(id, NOW - 40 * DAY);
    const other = new HeldExpiry({
      spool: new Spool(dir, 'active-2'),
      log: createLogger({
        level: 'info',
        stream: new Writable({ write: (_c, _e, d) => d() }),
      }),
      metrics,
      now: clock.now,
      retentionMs: 30 * DAY,
    });
    await Promise.all([expiry.sweep(), other.sweep()]);
    expect(await spool.ids('held')).to.deep.equal([]);
    expect(await readdir(join(dir, 'msg'))).to.deep.equal([]);
    expect(await metric('mailbridge_held_expired_total')).to.equal(3);
    expect(lines.filter(l => l.level === 'error')).to.deep.equal([]);
  });

  it('a message replayed and held again since it was first read is kept, with its new time', async () => {
    await hold('R1', NOW - 10 * DAY);
    await expiry.sweep();
    // replayed, and held again now
    await rm(join(dir, 'held', 'R1.json'));
    await rm(join(dir, 'msg', 'R1.eml'));
    await hold('R1', NOW + 21 * DAY);
    clock.advance(21 * DAY);
    await expiry.sweep();
    expect(await spool.ids('held')).to.deep.equal(['R1']);
    expect(await metric('mailbridge_held_expired_total')).to.equal(0);
    clock.advance(30 * DAY);
    await expiry.sweep();
    expect(await spool.ids('held')).to.deep.equal([]);
  });

  it('a replay that wrote its queue/ state first keeps the raw file', async () => {
    const held = await hold('P1', NOW - 40 * DAY);
    // the replay's first step: the new state in queue/, the held one not yet dropped
    await writeFile(
      join(dir, 'queue', 'P1.json'),
      JSON.stringify(releaseEntry(held, NOW)),
    );
    await expiry.sweep();
    expect(await readdir(join(dir, 'msg'))).to.deep.equal(['P1.eml']);
    expect(await spool.ids('queue')).to.deep.equal(['P1']);
    expect(await spool.ids('held')).to.deep.equal([]);
  });
});
