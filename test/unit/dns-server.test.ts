// The loopback DNS server of test/helpers/dns-server.ts, asked through node:dns (c-ares) as the
// daemon will ask it, and with raw UDP queries for what c-ares does not send (EDNS0, bad input).
import { expect } from 'chai';
import { createSocket } from 'node:dgram';
import {
  resolverFor,
  startDnsServer,
  type TestDnsServer,
} from '../helpers/dns-server.js';
import { encodeName } from '../helpers/dns-wire.js';
import { dkimKey } from '../helpers/dkim.js';

/** The error code a promise rejects with (it must reject). */
async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  throw new Error('expected the lookup to fail');
}

/** One TXT question over UDP, optionally with an OPT record offering `edns` bytes. */
async function rawQuery(
  dns: TestDnsServer,
  name: string,
  options: { edns?: number; questions?: number } = {},
): Promise<Buffer> {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(0x1234, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(options.questions ?? 1, 4);
  header.writeUInt16BE(options.edns ? 1 : 0, 10);
  const question = Buffer.concat([
    encodeName(name),
    Buffer.from([0, 16, 0, 1]),
  ]);
  const opt = Buffer.alloc(options.edns ? 11 : 0);
  if (options.edns) {
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(options.edns, 3);
  }
  const socket = createSocket('udp4');
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      socket.once('message', resolve);
      socket.once('error', reject);
      socket.send(Buffer.concat([header, question, opt]), dns.port, dns.host);
    });
  } finally {
    socket.close();
  }
}

describe('test DNS server, asked through node:dns', () => {
  let dns: TestDnsServer;

  before(async () => {
    dns = await startDnsServer();
  });
  after(() => dns.close());
  beforeEach(() => dns.clear());

  it('answers TXT, A, AAAA, MX, PTR and CNAME, names in any case', async () => {
    dns
      .set('Example.ORG', 'TXT', ['v=spf1 ip4:127.0.0.1 -all'])
      .set('example.org', 'A', ['127.0.0.1', '127.0.0.2'])
      .set('example.org', 'AAAA', ['::1', '2001:db8::ffff:192.0.2.1'])
      .set('example.org', 'MX', ['10 mx1.example.org', '20 mx2.example.org'])
      .set('1.2.0.192.in-addr.arpa', 'PTR', ['mail.example.org'])
      .set('www.example.org', 'CNAME', ['example.org']);
    const r = resolverFor(dns.address);
    expect(await r.resolveTxt('example.org.')).to.deep.equal([
      ['v=spf1 ip4:127.0.0.1 -all'],
    ]);
    expect(await r.resolve('EXAMPLE.org', 'TXT')).to.deep.equal([
      ['v=spf1 ip4:127.0.0.1 -all'],
    ]);
    expect(await r.resolve4('example.org')).to.deep.equal([
      '127.0.0.1',
      '127.0.0.2',
    ]);
    expect(await r.resolve6('example.org')).to.deep.equal([
      '::1',
      '2001:db8::ffff:c000:201',
    ]);
    const mx = await r.resolveMx('example.org');
    expect(
      mx.map(({ exchange, priority }) => ({ exchange, priority })),
    ).to.deep.equal([
      { exchange: 'mx1.example.org', priority: 10 },
      { exchange: 'mx2.example.org', priority: 20 },
    ]);
    // (reverse() would read /etc/hosts first; mailauth asks for PTR records directly)
    expect(await r.resolve('1.2.0.192.in-addr.arpa', 'PTR')).to.deep.equal([
      'mail.example.org',
    ]);
    expect(await r.resolveCname('www.example.org')).to.deep.equal([
      'example.org',
    ]);
    // an A question at an alias gets the CNAME and the target's addresses
    expect(await r.resolve4('www.example.org')).to.deep.equal([
      '127.0.0.1',
      '127.0.0.2',
    ]);
    expect(dns.queries[0]).to.deep.equal({
      name: 'example.org',
      type: 'TXT',
      transport: 'udp',
      edns: null, // node's c-ares sends no OPT record, so UDP answers stop at 512 bytes
    });
  });

  it('serves a 2048-bit DKIM key record', async () => {
    const key = await dkimKey();
    dns.set('s1._domainkey.example.org', 'TXT', [key.record]);
    const r = resolverFor(dns.address);
    const [record] = await r.resolveTxt('s1._domainkey.example.org');
    expect(record!.map(s => s.length)).to.deep.equal([
      255,
      key.record.length - 255,
    ]);
    expect(record!.join('')).to.equal(key.record);
  });

  it('truncates a UDP answer over 512 bytes, and c-ares gets it again over TCP', async () => {
    const long = `v=DKIM1; k=rsa; n=${'x'.repeat(700)}`;
    const huge = 'y'.repeat(3000);
    dns
      .set('long.example.org', 'TXT', [long])
      .set('huge.example.org', 'TXT', [huge]);
    const r = resolverFor(dns.address);
    expect((await r.resolveTxt('long.example.org'))[0]!.join('')).to.equal(
      long,
    );
    expect((await r.resolveTxt('huge.example.org'))[0]!.join('')).to.equal(
      huge,
    );
    expect(dns.queries.map(q => `${q.name} ${q.transport}`)).to.deep.equal([
      'long.example.org udp',
      'long.example.org tcp',
      'huge.example.org udp',
      'huge.example.org tcp',
    ]);
  });

  it('honours the EDNS0 payload size of a query and answers with OPT', async () => {
    dns.set('long.example.org', 'TXT', ['x'.repeat(700)]);
    const plain = await rawQuery(dns, 'long.example.org');
    expect(plain.readUInt16BE(2) & 0x0200, 'TC').to.equal(0x0200);
    expect(plain.readUInt16BE(6), 'answers').to.equal(0);
    const edns = await rawQuery(dns, 'long.example.org', { edns: 4096 });
    expect(edns.readUInt16BE(0)).to.equal(0x1234);
    expect(edns.readUInt16BE(2) & 0x0200, 'TC').to.equal(0);
    expect(edns.readUInt16BE(6), 'answers').to.equal(1);
    expect(edns.readUInt16BE(10), 'OPT').to.equal(1);
  });

  it('answers a malformed query with FORMERR', async () => {
    const reply = await rawQuery(dns, 'example.org', { questions: 2 });
    expect(reply.readUInt16BE(2) & 0x8000, 'QR').to.equal(0x8000);
    expect(reply.readUInt16BE(2) & 0xf, 'rcode').to.equal(1);
  });

  it('NXDOMAIN is ENOTFOUND; a name without that type (or a name only above others) ENODATA', async () => {
    dns.set('example.org', 'A', ['127.0.0.1']);
    dns.set('s1._domainkey.example.org', 'TXT', ['v=DKIM1; p=']);
    dns.set('empty.example.org', 'TXT', []);
    const r = resolverFor(dns.address);
    expect(await codeOf(r.resolveTxt('nowhere.example.org'))).to.equal(
      'ENOTFOUND',
    );
    expect(await codeOf(r.resolveTxt('example.org'))).to.equal('ENODATA');
    expect(await codeOf(r.resolveTxt('_domainkey.example.org'))).to.equal(
      'ENODATA',
    );
    expect(await codeOf(r.resolveTxt('empty.example.org'))).to.equal('ENODATA');
    expect(await codeOf(r.resolveMx('org'))).to.equal('ENODATA');
  });

  it('fails a name with an rcode, for one type or all, until healed', async () => {
    dns
      .set('example.org', 'TXT', ['ok'])
      .set('example.org', 'A', ['127.0.0.1']);
    dns.fail('example.org', 'SERVFAIL', 'TXT');
    dns.fail('refused.example.org', 'REFUSED');
    const r = resolverFor(dns.address);
    expect(await codeOf(r.resolveTxt('example.org'))).to.equal('ESERVFAIL');
    expect(await r.resolve4('example.org')).to.deep.equal(['127.0.0.1']);
    expect(await codeOf(r.resolve4('refused.example.org'))).to.equal(
      'EREFUSED',
    );
    // c-ares does not ask again after SERVFAIL from the only server, even with tries: 2
    expect(dns.count('example.org', 'TXT')).to.equal(1);
    dns.heal('example.org');
    expect(await r.resolveTxt('example.org')).to.deep.equal([['ok']]);
  });

  it('holds a delayed answer, and the resolver still takes it', async () => {
    dns
      .set('slow.example.org', 'A', ['127.0.0.1'])
      .delay('slow.example.org', 80);
    // a new resolver: its first timeout is the configured one (see resolverFor)
    const r = resolverFor(dns.address, { timeout: 5000, tries: 1 });
    const started = performance.now();
    expect(await r.resolve4('slow.example.org')).to.deep.equal(['127.0.0.1']);
    expect(performance.now() - started).to.be.at.least(75);
  });

  it('drops queries: the resolver times out (ETIMEOUT, after at least 250 ms)', async () => {
    dns.set('gone.example.org', 'TXT', ['never sent']).drop('gone.example.org');
    const r = resolverFor(dns.address, { timeout: 50, tries: 1 });
    const started = performance.now();
    expect(await codeOf(r.resolveTxt('gone.example.org'))).to.equal('ETIMEOUT');
    // c-ares raises a timeout under 250 ms to 250 ms
    expect(performance.now() - started).to.be.at.least(200);
    expect(dns.count('gone.example.org')).to.equal(1);
  });

  it('logs every question; node:dns caches nothing, so a repeat is asked again', async () => {
    dns.set('example.org', 'TXT', ['v=spf1 -all']);
    const seen: string[] = [];
    const onQuery = (q: { name: string }) => seen.push(q.name);
    dns.on('query', onQuery);
    const r = resolverFor(dns.address);
    await r.resolveTxt('example.org');
    await r.resolveTxt('Example.Org');
    dns.off('query', onQuery);
    expect(dns.count('example.org', 'TXT')).to.equal(2);
    expect(dns.count('example.org', 'A')).to.equal(0);
    expect(seen).to.deep.equal(['example.org', 'example.org']);
    dns.clearQueries();
    expect(dns.queries).to.deep.equal([]);
  });

  it('refuses a record value that does not fit its type', () => {
    expect(() => dns.set('x.test', 'A', ['::1'])).to.throw(/IPv4/);
    expect(() => dns.set('x.test', 'MX', ['mx.test'])).to.throw(/preference/);
    expect(() => dns.set('x.test', 'TXT', [['z'.repeat(256)]])).to.throw(/255/);
  });
});
