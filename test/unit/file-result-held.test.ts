// ResultFiler files a held outcome like a dead one, on a real spool: a claimed entry moved to
// held/, a fresh one (its own file or a journal record) parked there; one `message held` line at
// info with its reason; the held count and gauge.
import { expect } from 'chai';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { RouteConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import {
  createMetrics,
  type Metrics,
} from '../../src/observability/metrics.js';
import { decide, type RouteResult } from '../../src/pipeline/decide.js';
import { ResultFiler } from '../../src/queue/file-result.js';
import { IntakeBuffer } from '../../src/queue/intake-buffer.js';
import { DeliveryPause } from '../../src/queue/pause.js';
import { Schedule } from '../../src/queue/schedule.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { newQueueEntry, type QueueEntry } from '../../src/spool/queue-entry.js';
import { spoolHeader } from '../../src/spool/spool-file.js';
import { Spool } from '../../src/spool/spool.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const RETRY = {
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 60_000,
  maxAgeMs: 86_400_000,
};
const ROUTES: RouteConfig[] = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: '*@example.org', mailbox_id: 'mb-sales' },
] as RouteConfig[];
const RAW = 'Subject: held\r\nMessage-ID: <filed@example.net>\r\n\r\nHi.\r\n';

describe('ResultFiler: outcome held', () => {
  let dir: string;
  let spool: Spool;
  let metrics: Metrics;
  let lines: Array<Record<string, unknown>>;
  let buffer: IntakeBuffer;
  let filer: ResultFiler;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-file-held-'));
    spool = await new Spool(dir).init();
    metrics = createMetrics();
    lines = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim()) lines.push(JSON.parse(line) as never);
        }
        done();
      },
    });
    const log = createLogger({ level: 'info', stream });
    const now = () => NOW;
    buffer = new IntakeBuffer({
      spool,
      log,
      concurrency: 1,
      onParked: () => undefined,
    });
    filer = new ResultFiler({
      spool,
      log,
      metrics,
      retry: RETRY,
      now,
      buffer,
      schedule: new Schedule({ spool, metrics, now }),
      pause: new DeliveryPause({ retry: RETRY, log, metrics, now }),
      dryRun: false,
    });
  });
  afterEach(async () => {
    spool.close();
    await rm(dir, { recursive: true, force: true });
  });

  function entry(id: string): QueueEntry {
    const rcptTo = ['support@example.com', 'a@example.org'];
    return newQueueEntry({
      envelope: {
        id,
        mailFrom: 'jane@example.net',
        rcptTo,
        receivedAt: new Date(NOW).toISOString(),
      },
      groups: groupByRoute(rcptTo, ROUTES),
      messageId: '<filed@example.net>',
      size: RAW.length,
      now: NOW,
    });
  }

  /** Route 0 delivered, route 1 held: the attempt's result. */
  function heldResult(e: QueueEntry) {
    const results: RouteResult[] = [
      { index: 0, outcome: 'delivered' },
      { index: 1, outcome: 'held', reason: 'bulk mail' },
    ];
    const result = decide(e, results, {
      startedAt: NOW,
      now: NOW,
      retry: RETRY,
      random: () => 0.5,
      messageId: '<filed@example.net>',
    });
    expect(result.outcome).to.equal('held');
    return result;
  }

  async function metric(name: string, label: string, value: string) {
    const found = (await metrics.registry.getMetricsAsJSON()).find(
      m => m.name === name,
    );
    const values = (found?.values ?? []) as Array<{
      value: number;
      labels: Record<string, string>;
    }>;
    return values.find(v => v.labels[label] === value)?.value ?? 0;
  }

  async function expectFiledHeld(id: string): Promise<void> {
    expect(await readdir(join(dir, 'held'))).to.deep.equal([`${id}.json`]);
    expect(await readdir(join(dir, 'msg'))).to.deep.equal([`${id}.eml`]);
    expect(await spool.ids('active')).to.deep.equal([]);
    expect(await spool.ids('queue')).to.deep.equal([]);
    const state = (await spool.read('held', id))!;
    expect(state.held).to.deep.equal({
      reason: 'bulk mail',
      at: new Date(NOW).toISOString(),
    });
    expect(state.routes.map(r => r.status)).to.deep.equal([
      'delivered',
      'held',
    ]);
    const outcome = lines.filter(l => l.queueId === id);
    expect(outcome).to.have.length(1);
    expect(outcome[0]).to.include({
      level: 'info',
      message: 'message held',
      queueId: id,
      messageId: '<filed@example.net>',
      outcome: 'held',
      reason: 'bulk mail',
    });
    expect(
      await metric('mailbridge_deliveries_total', 'outcome', 'held'),
    ).to.equal(1);
    expect(await metric('mailbridge_spool_messages', 'state', 'held')).to.equal(
      1,
    );
    expect(buffer.isFresh(id)).to.equal(false);
  }

  it('a claimed entry: active/ -> held/', async () => {
    const e = entry('C1');
    const tmp = spool.tmpMessagePath('C1');
    await writeFile(tmp, RAW);
    await spool.commit(e, tmp, 'active');
    await filer.file(heldResult(e));
    await expectFiledHeld('C1');
  });

  it('a fresh message in its own file: parked into held/', async () => {
    const e = entry('F1');
    const header = spoolHeader(e);
    const tmp = spool.tmpMessagePath('F1');
    await writeFile(tmp, Buffer.concat([header, Buffer.from(RAW)]));
    await spool.commitFresh('F1', tmp);
    const fresh = { ...e, rawOffset: header.length };
    buffer.hold(fresh);
    await filer.file(heldResult(fresh));
    await expectFiledHeld('F1');
  });

  it('a fresh message in the journal: parked into held/, its record done', async () => {
    const fresh = await spool.journalFresh(entry('J1'), Buffer.from(RAW));
    buffer.hold(fresh);
    await filer.file(heldResult(fresh));
    await expectFiledHeld('J1');
    expect(spool.journaled).to.equal(0);
  });
});
