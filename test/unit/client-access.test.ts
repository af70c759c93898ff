// Unit tables for the client checks at session start: address forms, allowed networks, and the
// per-client limits with an injected clock.
import { expect } from 'chai';
import {
  allowedNetworks,
  clientAddress,
  networkError,
} from '../../src/config/networks.js';
import { clientKey, ClientLimiter } from '../../src/smtp/client-access.js';

describe('client access', () => {
  describe('clientAddress', () => {
    const cases: Array<[raw: string, expected: string]> = [
      ['192.0.2.1', '192.0.2.1'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['::FFFF:10.0.0.7', '10.0.0.7'],
      ['2001:DB8::1', '2001:db8::1'],
      ['::1', '::1'],
    ];
    for (const [raw, expected] of cases) {
      it(`${raw} -> ${expected}`, () => {
        expect(clientAddress(raw)).to.equal(expected);
      });
    }
  });

  describe('clientKey: what the per-client limits count under', () => {
    const cases: Array<[raw: string, expected: string]> = [
      ['192.0.2.1', '192.0.2.1'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
      ['2001:DB8:1:2::99', '2001:db8:1:2::/64'],
      ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
      ['2001:db8::1', '2001:db8::/64'],
      ['2001:db8:0:0:1::1', '2001:db8::/64'],
      ['2001:0db8:0001:0000::1', '2001:db8:1::/64'],
      ['::1', '::/64'],
      // NAT64's well-known prefix: the IPv4 client behind it, each its own
      ['64:ff9b::192.0.2.33', '192.0.2.33'],
      ['64:ff9b::c000:222', '192.0.2.34'],
      // another network inside 64:ff9b::/64 but outside the /96 is IPv6 as usual
      ['64:ff9b::1:0:c000:221', '64:ff9b::/64'],
      ['fe80::1%eth0', 'fe80::/64'],
    ];
    for (const [raw, expected] of cases) {
      it(`${raw} -> ${expected}`, () => {
        expect(clientKey(raw)).to.equal(expected);
      });
    }

    it('one IPv6 /64 is one client: its addresses share the limits', () => {
      const limiter = new ClientLimiter({ maxConnections: 2, perMinute: 0 });
      expect(limiter.open('2001:db8:1:2::a')).to.equal(undefined);
      expect(limiter.open('2001:db8:1:2::b')).to.equal(undefined);
      expect(limiter.open('2001:db8:1:2:ffff::c')?.message).to.equal(
        '4.7.0 Too many connections from 2001:db8:1:2::/64, try again later',
      );
      // the next /64 is another client
      expect(limiter.open('2001:db8:1:3::a')).to.equal(undefined);
      limiter.close('2001:db8:1:2::b');
      expect(limiter.open('2001:db8:1:2::d')).to.equal(undefined);
    });
  });

  describe('networkError', () => {
    const sound = [
      '10.0.0.0/8',
      '192.0.2.1',
      '0.0.0.0/0',
      '::1',
      '2001:db8::/32',
      '::/0',
    ];
    for (const entry of sound) {
      it(`${entry} is sound`, () => {
        expect(networkError(entry)).to.equal(undefined);
      });
    }
    const wrong: Array<[entry: string, message: RegExp]> = [
      ['10.0.0.0/33', /prefix length must be 0 to 32/],
      ['2001:db8::/129', /prefix length must be 0 to 128/],
      ['10.0.0.0/', /prefix length/],
      ['10.0.0.0/8/8', /not an IP address or network/],
      ['10.0.0', /not an IP address or network/],
      ['mail.example.com', /not an IP address or network/],
      ['', /not an IP address or network/],
      ['10.0.0.0/-1', /prefix length/],
    ];
    for (const [entry, message] of wrong) {
      it(`${JSON.stringify(entry)} -> ${message}`, () => {
        expect(networkError(entry)).to.match(message);
      });
    }
  });

  describe('allowedNetworks', () => {
    const networks = ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'];
    const cases: Array<[address: string, allowed: boolean]> = [
      ['10.1.2.3', true],
      ['::ffff:10.1.2.3', true],
      ['11.0.0.1', false],
      ['192.0.2.7', true],
      ['192.0.2.8', false],
      ['2001:db8:1::5', true],
      ['2001:db9::1', false],
      ['127.0.0.1', false],
      ['not an address', false],
    ];
    const allowed = allowedNetworks(networks);
    for (const [address, expected] of cases) {
      it(`${address} -> ${expected ? 'allowed' : 'refused'}`, () => {
        expect(allowed(address)).to.equal(expected);
      });
    }
    it('an empty list allows every client', () => {
      const everyone = allowedNetworks([]);
      expect(['127.0.0.1', '::1', '203.0.113.9'].map(everyone)).to.deep.equal([
        true,
        true,
        true,
      ]);
    });
  });

  describe('ClientLimiter', () => {
    let now = 0;
    const clock = () => now;
    beforeEach(() => (now = 1_000_000));

    it('cancel() undoes an open: its session and its start; close() gives back only the session', () => {
      const limiter = new ClientLimiter(
        { maxConnections: 5, perMinute: 2 },
        clock,
      );
      expect(limiter.open('192.0.2.1')).to.equal(undefined);
      limiter.cancel('192.0.2.1');
      expect(limiter.size).to.equal(0);
      expect(limiter.open('192.0.2.1')).to.equal(undefined);
      limiter.close('192.0.2.1');
      expect(limiter.open('192.0.2.1')).to.equal(undefined);
      // two starts within the minute: the closed one counts, the cancelled one does not
      expect(limiter.open('192.0.2.1')?.reason).to.equal('rate');
    });

    it('refuses a session past maxConnections with 421 4.7.0, and counts no refused one', () => {
      const limiter = new ClientLimiter(
        { maxConnections: 2, perMinute: 0 },
        clock,
      );
      expect(limiter.open('192.0.2.1')).to.equal(undefined);
      expect(limiter.open('::ffff:192.0.2.1')).to.equal(undefined);
      const refusal = limiter.open('192.0.2.1');
      expect(refusal).to.deep.include({
        reason: 'connections',
        responseCode: 421,
      });
      expect(refusal?.message).to.match(
        /^4\.7\.0 Too many connections from 192\.0\.2\.1/,
      );
      // another client is counted on its own
      expect(limiter.open('192.0.2.2')).to.equal(undefined);
      // one session closes: one more may open, not two
      limiter.close('192.0.2.1');
      expect(limiter.open('192.0.2.1')).to.equal(undefined);
      expect(limiter.open('192.0.2.1')?.reason).to.equal('connections');
    });

    it('refuses past perMinute starts within any 60 s, closed sessions included', () => {
      const limiter = new ClientLimiter(
        { maxConnections: 50, perMinute: 3 },
        clock,
      );
      const steps: Array<[advanceMs: number, expected: string | undefined]> = [
        [0, undefined], // t=0
        [10_000, undefined], // t=10 s
        [20_000, undefined], // t=30 s
        [29_999, 'rate'], // t=59.999 s: three starts in the last minute
        [1, undefined], // t=60 s: the first start is a minute old
        [0, 'rate'],
        [10_000, undefined], // t=70 s: the second one is too
      ];
      for (const [advance, expected] of steps) {
        now += advance;
        const refusal = limiter.open('192.0.2.1');
        expect(refusal?.reason, `at +${now - 1_000_000} ms`).to.equal(expected);
        if (!refusal) limiter.close('192.0.2.1');
      }
      now += 1;
      expect(limiter.open('192.0.2.1')?.message).to.match(
        /^4\.7\.0 Too many connections from 192\.0\.2\.1 in the last minute/,
      );
    });

    it('forgets the clients of more than a minute ago', () => {
      const limiter = new ClientLimiter(
        { maxConnections: 5, perMinute: 10 },
        clock,
      );
      for (let i = 0; i < 100; i++) {
        const address = `198.51.100.${i}`;
        limiter.open(address);
        limiter.close(address);
      }
      limiter.open('192.0.2.1'); // still open
      expect(limiter.size).to.equal(101);
      now += 60_001;
      limiter.open('192.0.2.2');
      expect(limiter.size).to.equal(2);
    });

    it('ten failed logins within ten minutes refuse the client until the oldest is ten minutes old', () => {
      const limiter = new ClientLimiter(
        { maxConnections: 50, perMinute: 0 },
        clock,
      );
      const start = now;
      for (let i = 1; i <= 9; i++) {
        expect(limiter.loginFailed('192.0.2.1'), `failure ${i}`).to.equal(
          false,
        );
        now += 1000;
      }
      expect(limiter.open('192.0.2.1')).to.equal(undefined);
      limiter.close('192.0.2.1');
      expect(limiter.loginFailed('192.0.2.1'), 'failure 10').to.equal(true);
      const refusal = limiter.open('::ffff:192.0.2.1');
      expect(refusal).to.deep.include({ reason: 'logins', responseCode: 421 });
      expect(refusal?.message).to.equal(
        '4.7.0 Too many failed logins from 192.0.2.1, try again later',
      );
      // another address is not concerned
      expect(limiter.open('192.0.2.2')).to.equal(undefined);
      // the first failure ten minutes old: nine remain, the client may come back
      now = start + 10 * 60_000;
      expect(limiter.open('192.0.2.1')).to.equal(undefined);
      // and the failures are forgotten with time
      limiter.close('192.0.2.1');
      limiter.close('192.0.2.2');
      now += 10 * 60_000;
      limiter.open('198.51.100.1');
      expect(limiter.size).to.equal(1);
    });

    it('without a rate limit, a client with no open session is forgotten at once', () => {
      const limiter = new ClientLimiter(
        { maxConnections: 5, perMinute: 0 },
        clock,
      );
      limiter.open('192.0.2.1');
      limiter.close('192.0.2.1');
      expect(limiter.size).to.equal(0);
      // a close with nothing open changes nothing
      limiter.close('192.0.2.1');
      expect(limiter.size).to.equal(0);
    });
  });
});
