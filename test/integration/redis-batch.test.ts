// RedisBatch against a real redis-server: the commands of one turn go as one pipeline, each
// answered in its order; a refusal answers the whole batch locally (undefined).
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/observability/logger.js';
import { RedisBatch } from '../../src/state/redis-batch.js';
import { SharedState } from '../../src/state/shared-state.js';
import { redisMissing, TestRedis } from '../helpers/redis-server.js';

/** A SharedState that counts its operations: one per batch sent. */
class CountingState extends SharedState {
  operations = 0;
  override run<T>(
    kind: string,
    operation: (redis: Redis) => Promise<T>,
  ): Promise<T | undefined> {
    this.operations++;
    return super.run(kind, operation);
  }
}

describe('RedisBatch against a real Redis', function () {
  const missing = redisMissing();
  let redis: TestRedis;
  let shared: CountingState;
  let prefix: string;

  beforeEach(async function () {
    if (missing) this.skip();
    redis = await new TestRedis().start();
    prefix = `batch-${randomUUID()}:`;
    shared = new CountingState(
      { url: redis.url, prefix, timeoutMs: 2000 },
      createLogger({ level: 'error' }),
    );
    expect(await shared.connected()).to.equal(true);
  });
  afterEach(async () => {
    await shared?.close();
    await redis?.close();
  });

  it('sends the commands of one turn as one operation, each reply in its place', async () => {
    const batch = new RedisBatch(shared, 'dedupe');
    const before = shared.operations;
    const replies = await Promise.all([
      batch.send(['SET', `${prefix}a`, '1', 'PX', 60_000, 'NX', 'GET']),
      batch.send(['SET', `${prefix}a`, '2', 'PX', 60_000, 'NX', 'GET']),
      batch.send(['GET', `${prefix}a`]),
    ]);
    expect(replies).to.deep.equal([null, '1', '1']);
    expect(shared.operations - before).to.equal(1);
    // a later turn: a batch of its own, one command sent as it is
    expect(await batch.send(['GET', `${prefix}a`])).to.equal('1');
    expect(shared.operations - before).to.equal(2);
  });

  it('a refusal answers the whole batch locally', async () => {
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'maxmemory', '1');
      const batch = new RedisBatch(shared, 'dedupe');
      const replies = await Promise.all([
        batch.send(['GET', `${prefix}b`]),
        batch.send(['SET', `${prefix}b`, '1', 'PX', 60_000]),
      ]);
      expect(replies).to.deep.equal([undefined, undefined]);
      expect(shared.available).to.equal(true);
      expect(shared.status().fallbacks).to.equal(1);
    } finally {
      await admin.quit();
    }
  });

  it('while Redis is away, answers at once without a turn', async () => {
    await redis.stop();
    const batch = new RedisBatch(shared, 'dedupe');
    // the first command finds the connection gone; the next ones are answered locally
    expect(await batch.send(['GET', `${prefix}c`])).to.equal(undefined);
    expect(shared.available).to.equal(false);
    expect(await batch.send(['GET', `${prefix}c`])).to.equal(undefined);
  });
});
