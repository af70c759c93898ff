// auth/sender-auth.ts's verdicts on unsigned mail, kept for the next message of the same client,
// HELO, MAIL FROM and From fields: against the loopback DNS server, counting the lookups that
// mailauth asks for (each one a judgement made anew).
import { expect } from 'chai';
import { cachedLookup } from '../../src/auth/dns-cache.js';
import {
  SenderAuthenticator,
  UNSIGNED_VERDICT_MS,
  unsignedKey,
} from '../../src/auth/sender-auth.js';
import type { Envelope } from '../../src/mail/envelope.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

const ENVELOPE: Envelope = {
  id: 'Q1',
  mailFrom: 'jane@example.org',
  rcptTo: ['help@example.com'],
  remoteAddress: '192.0.2.1',
  helo: 'mail.example.org',
  receivedAt: '2026-12-07T00:00:00.000Z',
};

/** A header field that makes a message signed: never judged from what was kept. */
const SIGNATURE = 'DKIM-Signature: v=1; d=example.org\r\n';

function message(from = 'Jane <jane@example.org>', extra = ''): Buffer {
  return Buffer.from(
    `${extra}From: ${from}\r\nTo: help@example.com\r\nSubject: hi\r\n` +
      'Message-ID: <1@example.org>\r\n\r\nHello.\r\n',
  );
}

describe('auth/sender-auth: verdicts on unsigned mail kept', () => {
  let dns: TestDnsServer;
  let clock = 0;
  let lookups = 0;
  let auth: SenderAuthenticator;

  before(async () => (dns = await startDnsServer()));
  after(() => dns.close());
  beforeEach(() => {
    dns.clear();
    dns.set('example.org', 'TXT', ['v=spf1 ip4:192.0.2.1 -all']);
    dns.set('_dmarc.example.org', 'TXT', ['v=DMARC1; p=reject']);
    clock = 1_000_000;
    lookups = 0;
    const lookup = cachedLookup({ servers: [dns.address], timeoutMs: 2000 });
    auth = new SenderAuthenticator(
      { dns: { servers: [dns.address], timeoutMs: 2000 }, hostname: 'mx.test' },
      (name, rrtype) => {
        lookups++;
        return lookup(name, rrtype);
      },
      () => clock,
    );
  });

  it('the same sender again: the kept verdict, no lookup', async () => {
    const first = await auth.evaluate(message(), ENVELOPE);
    expect(first.verdict).to.equal('pass');
    const asked = lookups;
    expect(asked).to.be.above(0);
    expect(await auth.evaluate(message(), ENVELOPE)).to.deep.equal(first);
    expect(lookups).to.equal(asked);
  });

  const changes: Array<[string, Buffer, Envelope, string]> = [
    ['another From', message('Eve <eve@example.org>'), ENVELOPE, 'pass'],
    [
      'another client address (SPF then fails)',
      message(),
      { ...ENVELOPE, remoteAddress: '198.51.100.7' },
      'fail',
    ],
    ['another HELO', message(), { ...ENVELOPE, helo: 'other.example' }, 'pass'],
    [
      'another MAIL FROM',
      message(),
      { ...ENVELOPE, mailFrom: 'bounce@example.org' },
      'pass',
    ],
    [
      'a second From field',
      message('Jane <jane@example.org>', 'From: eve@example.net\r\n'),
      ENVELOPE,
      'fail',
    ],
    [
      'a signed message (never kept)',
      message('Jane <jane@example.org>', SIGNATURE),
      ENVELOPE,
      'pass',
    ],
  ];
  for (const [name, raw, envelope, verdict] of changes) {
    it(`${name}: judged anew`, async () => {
      await auth.evaluate(message(), ENVELOPE);
      const asked = lookups;
      const judged = await auth.evaluate(raw, envelope);
      expect(judged.verdict).to.equal(verdict);
      expect(lookups, 'lookups').to.be.above(asked);
    });
  }

  it('a signed message twice: judged each time', async () => {
    const signed = message('Jane <jane@example.org>', SIGNATURE);
    await auth.evaluate(signed, ENVELOPE);
    const asked = lookups;
    await auth.evaluate(signed, ENVELOPE);
    expect(lookups).to.be.above(asked);
  });

  it('kept for UNSIGNED_VERDICT_MS, then judged anew', async () => {
    await auth.evaluate(message(), ENVELOPE);
    const asked = lookups;
    clock += UNSIGNED_VERDICT_MS - 1;
    await auth.evaluate(message(), ENVELOPE);
    expect(lookups).to.equal(asked);
    clock += 1;
    await auth.evaluate(message(), ENVELOPE);
    expect(lookups).to.be.above(asked);
  });

  it('verdicts past their time are dropped, not only passed over', async () => {
    await auth.evaluate(message(), ENVELOPE);
    clock += 10_000;
    await auth.evaluate(message('Bob <bob@example.org>'), ENVELOPE);
    expect(auth.kept).to.equal(2);
    // the first is 30 s old, the second 20 s: any judgement drops the first, even one not kept
    clock += UNSIGNED_VERDICT_MS - 10_000;
    await auth.evaluate(
      message('Jane <jane@example.org>', SIGNATURE),
      ENVELOPE,
    );
    expect(auth.kept).to.equal(1);
    clock += 10_000;
    await auth.evaluate(
      message('Jane <jane@example.org>', SIGNATURE),
      ENVELOPE,
    );
    expect(auth.kept).to.equal(0);
  });

  it('a DNS failure is never kept: the next message asks again', async () => {
    dns.fail('example.org', 'SERVFAIL');
    dns.fail('_dmarc.example.org', 'SERVFAIL');
    const failed = await auth.evaluate(message(), ENVELOPE);
    expect([failed.spf, failed.dmarc]).to.include('temperror');
    const asked = lookups;
    await auth.evaluate(message(), ENVELOPE);
    expect(lookups).to.be.above(asked);
  });

  it('unsignedKey: folded From lines count; a key over 2 KiB is not kept', () => {
    const folded = 'From: Jane\r\n <jane@example.org>\r\nTo: x\r\n';
    const flat = 'From: Jane <jane@example.org>\r\nTo: x\r\n';
    expect(unsignedKey(folded, ENVELOPE)).to.not.equal(
      unsignedKey(flat, ENVELOPE),
    );
    const giant = `From: ${'a'.repeat(3000)}@example.org\r\n`;
    expect(unsignedKey(giant, ENVELOPE)).to.equal(undefined);
  });
});
