// auth/dns-cache.ts against the loopback DNS server: answers and misses cached, lookups in
// flight shared, a silent server turned into ETIMEOUT within the time limit.
import { expect } from 'chai';
import { cachedLookup, CACHE_TTL_MS } from '../../src/auth/dns-cache.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

describe('auth/dns-cache: the resolver of sender authentication', () => {
  let dns: TestDnsServer;
  let clock = 0;
  const now = () => clock;

  before(async () => {
    dns = await startDnsServer();
  });
  after(() => dns.close());
  beforeEach(() => {
    dns.clear();
    clock = 1_000_000;
  });

  const lookupOn = (timeoutMs = 2000) =>
    cachedLookup({ servers: [dns.address], timeoutMs }, now);

  it('asks the configured server, and answers from the cache until the answer is old', async () => {
    dns.set('example.test', 'TXT', ['v=spf1 -all']);
    const lookup = lookupOn();
    expect(await lookup('example.test', 'TXT')).to.deep.equal([
      ['v=spf1 -all'],
    ]);
    expect(await lookup('EXAMPLE.test', 'TXT')).to.deep.equal([
      ['v=spf1 -all'],
    ]);
    expect(dns.count('example.test', 'TXT')).to.equal(1);
    clock += CACHE_TTL_MS.found + 1;
    await lookup('example.test', 'TXT');
    expect(dns.count('example.test', 'TXT')).to.equal(2);
  });

  it('caches a name that does not exist, for a shorter time', async () => {
    const lookup = lookupOn();
    const missing = async () =>
      (
        (await lookup('nowhere.test', 'TXT').catch((e: unknown) => e)) as {
          code: string;
        }
      ).code;
    expect(await missing()).to.equal('ENOTFOUND');
    expect(await missing()).to.equal('ENOTFOUND');
    expect(dns.count('nowhere.test', 'TXT')).to.equal(1);
    clock += CACHE_TTL_MS.missing + 1;
    await missing();
    expect(dns.count('nowhere.test', 'TXT')).to.equal(2);
  });

  it('shares one query between lookups of the same name made at once', async () => {
    dns.set('shared.test', 'A', ['192.0.2.7']);
    const lookup = lookupOn();
    const answers = await Promise.all([
      lookup('shared.test', 'A'),
      lookup('shared.test', 'A'),
      lookup('shared.test', 'A'),
    ]);
    expect(answers).to.deep.equal([
      ['192.0.2.7'],
      ['192.0.2.7'],
      ['192.0.2.7'],
    ]);
    expect(dns.count('shared.test', 'A')).to.equal(1);
  });

  it('a server that never answers is an ETIMEOUT, and the failure is kept only briefly', async () => {
    dns.drop('silent.test');
    const lookup = lookupOn(300);
    const err = (await lookup('silent.test', 'TXT').catch(
      (e: unknown) => e,
    )) as {
      code: string;
    };
    expect(err.code).to.equal('ETIMEOUT');
    dns.heal('silent.test');
    dns.set('silent.test', 'TXT', ['back']);
    clock += CACHE_TTL_MS.failed + 1;
    expect(await lookup('silent.test', 'TXT')).to.deep.equal([['back']]);
  });
});
