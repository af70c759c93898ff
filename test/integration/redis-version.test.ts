// A Redis older than 7.0 (which cannot take SET ... NX GET) is not used: said once at error
// level, the instance runs on its local state, and /status says why. Redis 6 is not installed
// here: a loopback server answers as one (test/helpers/fake-old-redis.ts).
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';
import { FleetDedupe } from '../../src/dedupe/fleet-dedupe.js';
import type { DedupeRecords } from '../../src/dedupe/dedupe-records.js';
import {
  atLeast7,
  redisVersion,
  SharedState,
} from '../../src/state/shared-state.js';
import { FakeOldRedis } from '../helpers/fake-old-redis.js';

describe('the Redis version', () => {
  const versions: Array<[string, string, boolean]> = [
    [
      '# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n',
      '7.0.15',
      true,
    ],
    ['# Server\r\nredis_version:7.2.4\r\n', '7.2.4', true],
    ['# Server\r\nredis_version:8.0.0\r\n', '8.0.0', true],
    ['# Server\r\nredis_version:6.2.14\r\n', '6.2.14', false],
    ['# Server\r\nredis_version:5.0.7\r\n', '5.0.7', false],
    // a server that does not say (a proxy): taken as able, its refusals then said once
    ['# Server\r\nredis_mode:standalone\r\n', '', true],
  ];
  for (const [info, version, able] of versions) {
    it(`${version || 'none said'}: ${able ? 'used' : 'not used'}`, () => {
      expect(redisVersion(info)).to.equal(version);
      expect(atLeast7(version)).to.equal(able);
    });
  }

  it('a Redis 6.2 is not used: one error line, local answers, /status says why', async () => {
    const fake = new FakeOldRedis('6.2.14');
    const url = await fake.start();
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({
      level: 'debug',
      stream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString('utf8').split('\n')) {
            if (line.trim()) lines.push(JSON.parse(line) as never);
          }
          done();
        },
      }),
    });
    const shared = new SharedState(
      { url, prefix: 'old:', timeoutMs: 1000 },
      log,
    );
    try {
      expect(await shared.connected()).to.equal(false);
      const local: DedupeRecords = {
        claim: async () => 'new',
        add: async () => undefined,
        release: async () => undefined,
        prune: async () => 0,
        close: async () => undefined,
      };
      const dedupe = new FleetDedupe(local, shared, {
        windowMs: 60_000,
        claimMs: 10_000,
      });
      expect(await dedupe.claim('AAAAAAAAAAAAAAAA')).to.equal('new');
      await dedupe.add('AAAAAAAAAAAAAAAA');
      await dedupe.settled();
      // nothing but the connection's own checks and the version reached the server
      const handshake = ['HELLO', 'CLIENT', 'INFO'];
      expect(fake.received.filter(c => !handshake.includes(c))).to.deep.equal(
        [],
      );
      expect(fake.received).to.include('INFO');
      const errors = lines.filter(l => l.level === 'error');
      expect(errors).to.have.length(1);
      expect(String(errors[0]!.message)).to.match(
        /^redis 6\.2\.14 is older than 7\.0.*local records and limits alone/,
      );
      const status = shared.status();
      expect(status.up).to.equal(false);
      expect(status.unsupported).to.match(/^redis 6\.2\.14 is older than 7\.0/);
      expect(status.fallbacks).to.equal(2);
    } finally {
      await shared.close();
      await fake.close();
    }
  });
});
