// queue/schedule.ts: the due heap never loses an entry whose attempt is still running (found by
// the fuzzer: a message filed back to queue/ just before its attempt left `running` was popped,
// and no scan read it again: it waited in queue/ until the next start).
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteConfig } from '../../src/config/schema.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Schedule } from '../../src/queue/schedule.js';
import { Spool } from '../../src/spool/spool.js';
import { writeSpooledEntry } from '../helpers/queue-tools.js';

const ROUTES = [
  { match: '*', thread_from_subaddress: false, fields: {} },
] as RouteConfig[];

describe('queue/schedule: due entries', () => {
  let dir: string;
  let spool: Spool;
  let schedule: Schedule;
  const fresh = { isFresh: () => false, waiting: 0 };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-schedule-'));
    spool = await new Spool(dir).init();
    schedule = new Schedule({
      spool,
      metrics: createMetrics(),
      now: () => 2000,
    });
  });
  afterEach(async () => {
    spool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an entry filed back while its attempt still runs is given once the attempt has ended', async () => {
    await writeSpooledEntry({
      dir,
      id: 'M1',
      raw: 'Subject: x\r\n\r\nx\r\n',
      rcptTo: ['a@example.com'],
      routes: ROUTES,
      messageId: null,
      state: 'queue',
      now: 1000,
    });
    const running = new Map([['M1', 1]]);
    schedule.add('M1', 1000);
    expect(schedule.next(Infinity, running)).to.equal(undefined);
    running.delete('M1');
    await schedule.scan(running, fresh);
    expect(schedule.next(Infinity, running)).to.deep.equal({
      id: 'M1',
      at: 1000,
    });
  });

  it('passes over running entries to the earliest one that is not running, and keeps them', () => {
    schedule.add('A', 100);
    schedule.add('B', 200);
    schedule.add('C', 300);
    const running = new Map([
      ['A', 1],
      ['B', 1],
    ]);
    expect(schedule.next(Infinity, running)).to.deep.equal({
      id: 'C',
      at: 300,
    });
    schedule.take('C');
    expect(schedule.next(Infinity, running)).to.equal(undefined);
    expect(schedule.next(250, new Map())).to.deep.equal({ id: 'A', at: 100 });
    schedule.take('A');
    expect(schedule.next(150, new Map())).to.deep.equal({ id: 'B', at: 150 });
  });

  it('a time pushed again makes the earlier one stale; a taken entry is not given again', () => {
    schedule.add('A', 100);
    schedule.add('A', 500);
    schedule.add('B', 300);
    expect(schedule.next(Infinity, new Map())).to.deep.equal({
      id: 'B',
      at: 300,
    });
    schedule.take('B');
    expect(schedule.next(Infinity, new Map())).to.deep.equal({
      id: 'A',
      at: 500,
    });
    schedule.take('A');
    expect(schedule.next(Infinity, new Map())).to.equal(undefined);
  });
});
