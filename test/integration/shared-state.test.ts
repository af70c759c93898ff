// The fleet's parts against a real redis-server: claims between two instances, a Redis that
// stops answering (SIGSTOP) or is down at the start, and an expiry on every key written.
import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { DedupeStore } from '../../src/dedupe/dedupe-store.js';
import { FleetDedupe } from '../../src/dedupe/fleet-dedupe.js';
import { createLogger } from '../../src/observability/logger.js';
import { ClientLimiter } from '../../src/smtp/client-access.js';
import { FleetLimiter } from '../../src/smtp/fleet-limiter.js';
import { FleetStatus } from '../../src/state/fleet-status.js';
import { SharedState } from '../../src/state/shared-state.js';
import { CuttingRelay } from '../helpers/cutting-relay.js';
import { redisMissing, TestRedis } from '../helpers/redis-server.js';

const WINDOW_MS = 60_000;
const KEY = 'AAAAAAAAAAAAAAAA';

/** A logger whose JSON lines are kept, with an event per line. */
function capturedLog() {
  const lines: Array<Record<string, unknown>> = [];
  const logged = new EventEmitter();
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        lines.push(JSON.parse(line) as Record<string, unknown>);
        logged.emit('line');
      }
      done();
    },
  });
  return {
    log: createLogger({ level: 'debug', stream }),
    lines,
    logged,
    said: (start: string) =>
      lines.filter(l => String(l.message).startsWith(start)).length,
    async waitFor(start: string): Promise<void> {
      while (!lines.some(l => String(l.message).startsWith(start))) {
        await once(logged, 'line');
      }
    },
  };
}

describe('fleet state against a real Redis', function () {
  const missing = redisMissing();
  let redis: TestRedis;
  let prefix = '';
  const cleanup: Array<() => Promise<unknown>> = [];

  beforeEach(async function () {
    if (missing) this.skip();
    redis = await new TestRedis().start();
    prefix = `unit-${randomUUID()}:`;
  });
  afterEach(async () => {
    for (const done of cleanup.splice(0).reverse()) await done();
    await redis?.close();
  });

  async function instance(timeoutMs = 2000, url = redis.url) {
    const captured = capturedLog();
    const shared = new SharedState({ url, prefix, timeoutMs }, captured.log);
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-fleet-'));
    const local = new DedupeStore(dir, WINDOW_MS);
    const dedupe = new FleetDedupe(local, shared, {
      windowMs: WINDOW_MS,
      claimMs: 10_000,
    });
    cleanup.push(async () => {
      await shared.close();
      await local.close();
      await rm(dir, { recursive: true, force: true });
    });
    return { ...captured, shared, dedupe };
  }

  /** An instance that reaches Redis through a CuttingRelay, connected, then cut off. */
  async function behindRelay() {
    const relay = await new CuttingRelay({
      host: '127.0.0.1',
      port: redis.port,
    }).start();
    cleanup.push(() => relay.close());
    const a = await instance(2000, `redis://127.0.0.1:${relay.port}`);
    expect(await a.shared.connected()).to.equal(true);
    relay.refuse();
    return { relay, a };
  }

  it('a key one instance posts is busy for the other; released, it is new; delivered, a duplicate', async () => {
    const a = await instance();
    const b = await instance();
    expect(await a.shared.connected()).to.equal(true);
    expect(await b.shared.connected()).to.equal(true);
    expect(await a.dedupe.claim(KEY)).to.equal('new');
    expect(await b.dedupe.claim(KEY)).to.equal('busy');
    await a.dedupe.release(KEY);
    expect(await b.dedupe.claim(KEY)).to.equal('new');
    await b.dedupe.add(KEY);
    // add() resolves once the local record is written; the fleet's follows
    await b.dedupe.settled();
    expect(await a.dedupe.claim(KEY)).to.equal('duplicate');
  });

  it('a claim asked ahead holds the key at once, and claim() takes its answer', async () => {
    const a = await instance();
    const b = await instance();
    await a.shared.connected();
    await b.shared.connected();
    await a.dedupe.add('BBBBBBBBBBBBBBBB');
    await a.dedupe.settled();
    a.dedupe.claimAhead(KEY);
    b.dedupe.claimAhead('BBBBBBBBBBBBBBBB');
    await a.dedupe.settled();
    // a's claim asked ahead holds the key already
    expect(await b.dedupe.claim(KEY)).to.equal('busy');
    expect(await a.dedupe.claim(KEY)).to.equal('new');
    // asked ahead for a message a delivered
    expect(await b.dedupe.claim('BBBBBBBBBBBBBBBB')).to.equal('duplicate');
  });

  it('a claim asked ahead and not used is given back: a local duplicate, too old, or at close', async () => {
    let now = 1_000_000;
    const a = await instance();
    const b = await instance();
    await a.shared.connected();
    await b.shared.connected();
    const shared = a.shared;
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-fleet-'));
    const local = new DedupeStore(dir, WINDOW_MS, () => now);
    const clocked = new FleetDedupe(local, shared, {
      windowMs: WINDOW_MS,
      claimMs: 10_000,
      now: () => now,
    });
    cleanup.push(() => rm(dir, { recursive: true, force: true }));

    // delivered here before (a local record): the claim asked ahead is given back
    await local.add('CCCCCCCCCCCCCCCC');
    clocked.claimAhead('CCCCCCCCCCCCCCCC');
    expect(await clocked.claim('CCCCCCCCCCCCCCCC')).to.equal('duplicate');
    expect(await b.dedupe.claim('CCCCCCCCCCCCCCCC')).to.equal('new');

    // asked more than half the claim's time ago (and expired since, here by hand): asked
    // again, its own claim no rival, and the key held again
    clocked.claimAhead(KEY);
    await clocked.settled();
    const client = new Redis(redis.url);
    cleanup.push(() => client.quit());
    expect(await client.del(`${prefix}dedupe:${KEY}`)).to.equal(1);
    now += 6_000;
    expect(await clocked.claim(KEY)).to.equal('new');
    expect(await b.dedupe.claim(KEY)).to.equal('busy');

    // never taken: given back at close
    clocked.claimAhead('DDDDDDDDDDDDDDDD');
    await clocked.close();
    expect(await b.dedupe.claim('DDDDDDDDDDDDDDDD')).to.equal('new');
  });

  it('claims asked ahead and left are given back when they age or pass 1,000', async () => {
    let now = 1_000_000;
    const a = await instance();
    const b = await instance();
    await a.shared.connected();
    await b.shared.connected();
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-fleet-'));
    const local = new DedupeStore(dir, WINDOW_MS, () => now);
    const clocked = new FleetDedupe(local, a.shared, {
      windowMs: WINDOW_MS,
      claimMs: 10_000,
      now: () => now,
    });
    cleanup.push(async () => {
      await local.close();
      await rm(dir, { recursive: true, force: true });
    });
    const key = (i: number) => `ahead-${String(i).padStart(10, '0')}`;
    clocked.claimAhead(key(0));
    now += 6_000;
    for (let i = 1; i <= 1_001; i++) clocked.claimAhead(key(i));
    await clocked.settled();
    // key 0 went for its age, key 1 for the count: both free again; key 2 still held
    expect(await b.dedupe.claim(key(0))).to.equal('new');
    expect(await b.dedupe.claim(key(1))).to.equal('new');
    expect(await b.dedupe.claim(key(2))).to.equal('busy');
  });

  it('a Redis that stops answering: local records answer, said once; pushed when it answers again', async () => {
    const a = await instance(300);
    const b = await instance(300);
    await a.shared.connected();
    await b.shared.connected();
    redis.pause();
    // the first operation waits its timeoutMs, then every one is local at once
    expect(await a.dedupe.claim(KEY)).to.equal('new');
    expect(a.shared.available).to.equal(false);
    await a.dedupe.add(KEY);
    await a.dedupe.settled();
    expect(await a.dedupe.claim(KEY)).to.equal('duplicate');
    expect(a.dedupe.waiting).to.equal(1);
    expect(a.said('redis unreachable')).to.equal(1);
    expect(a.shared.status().fallbacks).to.be.greaterThan(0);

    redis.resume();
    await a.waitFor('redis reachable again');
    expect(a.dedupe.waiting).to.equal(0);
    expect(a.said('redis unreachable')).to.equal(1);
    // b never recorded it (nor saw the outage: it asked nothing meanwhile): a pushed it
    expect(b.said('redis unreachable')).to.equal(0);
    expect(await b.dedupe.claim(KEY)).to.equal('duplicate');
  });

  it('a catch-up cut halfway: what was not pushed waits for the next return, none lost', async () => {
    const { relay, a } = await behindRelay();
    // 700 deliveries while Redis is away: a catch-up of two chunks (500, then 200)
    const keys = Array.from(
      { length: 700 },
      (_, i) => `K${String(i).padStart(15, '0')}`,
    );
    for (const key of keys) await a.dedupe.add(key);
    await a.dedupe.settled();
    expect(a.dedupe.waiting).to.equal(700);
    expect(a.said('redis unreachable')).to.equal(1);

    // the cut falls inside the second chunk: after about 600 of the catch-up's SETs
    const set = ['SET', `${prefix}dedupe:${keys[0]}`, `d:${Date.now()}`];
    const setBytes = [...set, 'PX', String(WINDOW_MS)].reduce(
      (sum, arg) => sum + `$${arg.length}\r\n${arg}\r\n`.length,
      '*5\r\n'.length,
    );
    const cut = relay.cutAfter(600 * setBytes);
    await a.waitFor('redis reachable again');
    await cut;
    while (a.said('redis unreachable') < 2) await once(a.logged, 'line');
    // the catch-up ends once the failed chunk is put back; settled() waits for it
    await a.dedupe.settled();
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.quit());
    const pushed = (await admin.keys(`${prefix}dedupe:*`)).length;
    expect(pushed).to.be.at.least(500).and.below(700);
    expect(a.dedupe.waiting).to.equal(200);

    relay.pass();
    while (a.said('redis reachable again') < 2) await once(a.logged, 'line');
    // the catch-up starts with the line; settled() waits for it
    await a.dedupe.settled();
    expect(a.dedupe.waiting).to.equal(0);
    const records = await admin.keys(`${prefix}dedupe:*`);
    expect(records).to.have.length(700);
    for (const key of [keys[0]!, keys[499]!, keys[500]!, keys[699]!]) {
      const name = `${prefix}dedupe:${key}`;
      expect(await admin.get(name)).to.match(/^d:\d+$/);
      expect(await admin.pttl(name)).to.be.within(1, WINDOW_MS);
    }
    expect(a.said('redis catch-up failed')).to.equal(0);
  });

  it('a stop during a catch-up ends it after the chunk in flight: the rest stays local, none half-pushed', async () => {
    const { relay, a } = await behindRelay();
    // 1,200 deliveries while Redis is away: a catch-up of three chunks (500, 500, 200)
    for (let i = 0; i < 1200; i++) {
      await a.dedupe.add(`S${String(i).padStart(15, '0')}`);
    }
    await a.dedupe.settled();
    expect(a.dedupe.waiting).to.equal(1200);
    relay.pass();
    // the catch-up takes its first chunk as the line is logged; the stop comes right after
    await a.waitFor('redis reachable again');
    await a.dedupe.close();
    expect(a.dedupe.waiting).to.equal(700);
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.quit());
    const pushed = await admin.keys(`${prefix}dedupe:S*`);
    expect(pushed).to.have.length(500);
    expect(pushed.map(name => name.slice(-16)).sort()[0]).to.equal(
      'S000000000000000',
    );
    expect(a.said('redis catch-up failed')).to.equal(0);
  });

  it('a Redis down at the start: the start goes on locally, and the fleet catches up when it comes', async () => {
    await redis.stop();
    const a = await instance();
    expect(await a.shared.connected()).to.equal(false);
    expect(await a.dedupe.claim(KEY)).to.equal('new');
    await a.dedupe.add(KEY);
    await redis.start();
    await a.waitFor('redis reachable again');
    const b = await instance();
    expect(await b.shared.connected()).to.equal(true);
    expect(await b.dedupe.claim(KEY)).to.equal('duplicate');
  });

  it('a Redis that refuses writes (out of memory): local records, Redis still up, said once', async () => {
    const a = await instance();
    await a.shared.connected();
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.quit());
    await admin.config('SET', 'maxmemory', '1');
    expect(await a.dedupe.claim(KEY)).to.equal('new');
    await a.dedupe.add(KEY);
    await a.dedupe.settled();
    expect(a.dedupe.waiting).to.equal(1);
    expect(await a.dedupe.claim('BBBBBBBBBBBBBBBB')).to.equal('new');
    expect(await a.dedupe.claim(KEY)).to.equal('duplicate');
    expect(a.shared.available).to.equal(true);
    expect(a.said('redis refused')).to.equal(1);
    expect(a.said('redis unreachable')).to.equal(0);

    // Redis takes writes again (no outage, so no return): the next write it takes pushes
    // what it refused
    await admin.config('SET', 'maxmemory', '0');
    await a.dedupe.add('CCCCCCCCCCCCCCCC');
    await a.dedupe.settled();
    expect(a.dedupe.waiting).to.equal(0);
    expect(await admin.get(`${prefix}dedupe:${KEY}`)).to.match(/^d:\d+$/);
  });

  it('every key the fleet writes expires', async () => {
    const a = await instance();
    await a.shared.connected();
    await a.dedupe.add(KEY);
    await a.dedupe.settled();
    expect(await a.dedupe.claim('BBBBBBBBBBBBBBBB')).to.equal('new');
    const limiter = new FleetLimiter(
      new ClientLimiter({ maxConnections: 5, perMinute: 10 }),
      a.shared,
      { limits: { maxConnections: 5, perMinute: 10 }, sessionMs: 60_000 },
    );
    expect(await limiter.open('192.0.2.1')).to.equal(undefined);
    expect(await limiter.loginFailed('192.0.2.1')).to.equal(false);
    const status = new FleetStatus(a.shared, 'host:25', async () => ({
      waiting: 1,
    }));
    await status.start();
    const view = await status.read();
    expect(view?.total).to.deep.equal({ waiting: 1 });
    await status.close();
    await status.start();

    const client = new Redis(redis.url);
    cleanup.push(() => client.quit());
    const keys = await client.keys(`${prefix}*`);
    expect(keys).to.have.length.greaterThan(5);
    for (const key of keys) {
      expect(await client.pttl(key), key).to.be.greaterThan(0);
    }
    await status.close();
  });
});
