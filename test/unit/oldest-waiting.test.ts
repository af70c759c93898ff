// queue/schedule.ts sets mailbridge_queue_oldest_age_seconds at each scan from the accept times of
// the entries in queue/, reading none it has read before.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteConfig } from '../../src/config/schema.js';
import {
  createMetrics,
  type Metrics,
} from '../../src/observability/metrics.js';
import { Schedule } from '../../src/queue/schedule.js';
import { Spool } from '../../src/spool/spool.js';
import { writeSpooledEntry } from '../helpers/queue-tools.js';

const ROUTES = [
  { match: '*', thread_from_subaddress: false, fields: {} },
] as RouteConfig[];

describe('queue/schedule: the age of the oldest waiting message', () => {
  let dir: string;
  let spool: Spool;
  let metrics: Metrics;
  let now: number;
  let schedule: Schedule;
  const fresh = { isFresh: () => false, waiting: 0 };
  const none = new Map<string, unknown>();
  const age = async () =>
    (await metrics.oldestWaitingSeconds.get()).values[0]?.value;
  const queued = (id: string, at: number) =>
    writeSpooledEntry({
      dir,
      id,
      raw: 'Subject: x\r\n\r\nx\r\n',
      rcptTo: ['a@example.com'],
      routes: ROUTES,
      messageId: null,
      state: 'queue',
      now: at,
    });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-oldest-'));
    spool = await new Spool(dir).init();
    metrics = createMetrics();
    now = 10_000;
    schedule = new Schedule({ spool, metrics, now: () => now });
  });
  afterEach(async () => {
    spool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is 0 with nothing waiting', async () => {
    await schedule.scan(none, fresh);
    expect(await age()).to.equal(0);
  });

  it('follows the oldest entry of queue/, and the next one once it left', async () => {
    await queued('M1', 1000);
    await queued('M2', 4000);
    await schedule.scan(none, fresh);
    expect(await age()).to.equal(9);
    // it grows with the clock, from what the first scan read
    now = 12_000;
    await schedule.scan(none, fresh);
    expect(await age()).to.equal(11);
    await spool.remove('M1', 'queue');
    await schedule.scan(none, fresh);
    expect(await age()).to.equal(8);
    await spool.remove('M2', 'queue');
    await schedule.scan(none, fresh);
    expect(await age()).to.equal(0);
  });

  it('takes the accept time an attempt hands back with its entry', async () => {
    await queued('M1', 9000);
    // filed back after an attempt: known, so not read again
    schedule.add('M1', 20_000, 2000);
    await schedule.scan(none, fresh);
    expect(await age()).to.equal(8);
  });
});
