// clientKey and IPv4-mapped addresses written in hex (a valid text form of the same address):
// counted as their IPv4 client, not under one shared IPv6 /64 (a review's regression tests).
import { expect } from 'chai';
import { clientKey, ClientLimiter } from '../../src/smtp/client-access.js';

describe('clientKey and IPv4-mapped addresses in hex form', () => {
  it('::ffff:c000:201 is the IPv4 client 192.0.2.1, as ::ffff:192.0.2.1 is', () => {
    // same 128-bit address, two text forms: one client, one key
    expect(clientKey('::ffff:c000:201')).to.equal(
      clientKey('::ffff:192.0.2.1'),
    );
    expect(clientKey('::ffff:c000:201')).to.equal('192.0.2.1');
  });

  it('two IPv4 clients written in hex mapped form do not share one limit', () => {
    expect(clientKey('::ffff:c000:201')).to.not.equal(
      clientKey('::ffff:c633:6407'),
    );
    const limiter = new ClientLimiter({ maxConnections: 1, perMinute: 0 });
    expect(limiter.open('::ffff:c000:201')).to.equal(undefined);
    // 198.51.100.7, another client: today refused as 'Too many connections from ::/64'
    expect(limiter.open('::ffff:c633:6407')).to.equal(undefined);
  });
});
