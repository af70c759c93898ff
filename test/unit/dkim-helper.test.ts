// mailauth's authenticate() against the loopback DNS server, with messages signed and sealed by
// test/helpers/dkim.ts: what each outcome looks like in mailauth 7.1.0's result.
//
// Result fields, as these tests observe them (lenient mode, the default):
// - result.spf.status.result: pass | fail | softfail | neutral | none | temperror | permerror;
//   .comment says why ("... DNS timeout", "... queryTxt ESERVFAIL example.org").
// - result.dkim.results[i].status.result: pass | neutral (a changed body: "body hash did not
//   verify") | fail (bad signature) | temperror ("DNS failure: ESERVFAIL" / "ETIMEOUT") | none
//   (an unsigned message has one entry, "message not signed"). .status.aligned is the signing
//   domain when it aligns with From, whatever the result: check result === 'pass' too.
// - result.dmarc: false only without a usable From domain (result.dmarcSkipReason says why);
//   .status.result pass | fail | none (no record: no .policy) | temperror (.error says why, no
//   .policy); .policy is the policy to apply (none | quarantine | reject), .p and .sp as
//   published; .status.comment is "p=REJECT arc=pass" and the like.
// - result.arc.status.result: none (no chain) | pass | fail; .i the newest instance;
//   .authenticationResults the parsed ARC-Authentication-Results of the newest set (what the
//   forwarder saw: .dkim[i].result, .spf.result, .dmarc.result).
// A DNS timeout or SERVFAIL is temperror on the check that asked; the other checks go on.
import { expect } from 'chai';
import { createPublicKey } from 'node:crypto';
import {
  authenticate,
  type AuthenticateOptions,
  type AuthenticateResult,
  type DNSResolver,
} from 'mailauth';
import {
  resolverFor,
  startDnsServer,
  type TestDnsServer,
} from '../helpers/dns-server.js';
import {
  arcForward,
  buildMessage,
  dkimKey,
  domainWithAuth,
  mailauthResolver,
  signDkim,
  type AuthDomain,
} from '../helpers/dkim.js';

/** The outcome in short: each check's result keyword, and DMARC's policy. */
function verdict(r: AuthenticateResult) {
  return {
    spf: r.spf && r.spf.status.result,
    dkim: r.dkim.results.map(
      d => d.status.result + (d.status.aligned ? ` (${d.status.aligned})` : ''),
    ),
    dmarc: r.dmarc && r.dmarc.status.result,
    policy: r.dmarc && r.dmarc.policy,
    arc: r.arc && r.arc.status.result,
  };
}

describe('sender authentication helpers, checked with mailauth authenticate()', () => {
  let dns: TestDnsServer;
  let org: AuthDomain;
  const message = buildMessage({ from: 'a@example.org', to: 'b@dest.test' });

  /** authenticate() as the daemon will call it: a message from 127.0.0.1, a@example.org. */
  function check(
    msg: string | Buffer,
    smtp: Partial<AuthenticateOptions> = {},
  ): Promise<AuthenticateResult> {
    return authenticate(msg, {
      ip: '127.0.0.1',
      helo: 'mail.example.org',
      sender: 'a@example.org',
      mta: 'mx.test',
      resolver: mailauthResolver(resolverFor(dns.address)),
      disableBimi: true,
      ...smtp,
    });
  }

  before(async function () {
    this.timeout(60_000); // RSA key generation, once per run, on a loaded machine
    dns = await startDnsServer();
    await Promise.all([dkimKey(), dkimKey('other', 1024)]);
  });
  after(() => dns.close());
  beforeEach(async () => {
    dns.clear();
    org = await domainWithAuth(dns, 'example.org', {
      spf: 'v=spf1 ip4:127.0.0.1 -all',
      dmarc: 'v=DMARC1; p=reject',
      dkimSelector: 's1',
    });
  });

  it('makes a 2048-bit key once per run and gives its DKIM record', async () => {
    const key = await dkimKey();
    expect(await dkimKey()).to.equal(key);
    const spki = createPublicKey({
      key: key.publicKeyDer,
      format: 'der',
      type: 'spki',
    });
    expect(spki.asymmetricKeyDetails?.modulusLength).to.equal(2048);
    expect(key.record).to.equal(
      `v=DKIM1; k=rsa; p=${key.publicKeyDer.toString('base64')}`,
    );
  });

  it('signs with a DKIM-Signature in front, and throws instead of signing nothing', async () => {
    const signed = (await org.sign(message)).toString();
    expect(signed).to.match(
      /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.org;/,
    );
    expect(signed.endsWith(message)).to.equal(true);
    const noFrom = 'Subject: x\r\n\r\nbody\r\n';
    const key = await dkimKey();
    await signDkim(noFrom, { domain: 'example.org', selector: 's1', key }).then(
      () => expect.fail('signed a message without From'),
      (err: Error) => expect(err.message).to.match(/no From header/),
    );
  });

  it('passes SPF, DKIM and DMARC for a set-up domain', async () => {
    const r = await check(await org.sign(message));
    expect(verdict(r)).to.deep.equal({
      spf: 'pass',
      dkim: ['pass (example.org)'],
      dmarc: 'pass',
      policy: 'reject',
      arc: 'none',
    });
    expect(r.dmarc && [r.dmarc.p, r.dmarc.sp]).to.deep.equal([
      'reject',
      'reject',
    ]);
    expect(r.dmarc && r.dmarc.alignment.dkim.result).to.equal('example.org');
    expect(r.dmarc && r.dmarc.alignment.spf.result).to.equal('example.org');
    // the questions mailauth asks (DMARC also walks up to the organizational domain)
    expect(dns.queries.map(q => `${q.name} ${q.type}`)).to.deep.equal([
      's1._domainkey.example.org TXT',
      'example.org TXT',
      '_dmarc.example.org TXT',
      '_dmarc.org TXT',
    ]);
  });

  it('fails DMARC for an unsigned message from an IP the p=reject domain does not list', async () => {
    const r = await check(message, { ip: '192.0.2.9' });
    expect(verdict(r)).to.deep.equal({
      spf: 'fail',
      dkim: ['none'],
      dmarc: 'fail',
      policy: 'reject',
      arc: 'none',
    });
    expect(r.dkim.results[0]!.status.comment).to.equal('message not signed');
    expect(r.dmarc && r.dmarc.status.comment).to.equal('p=REJECT arc=none');
  });

  it('gives dmarc none without a record, and policy none for p=none', async () => {
    dns.remove('_dmarc.example.org');
    const none = await check(await org.sign(message));
    expect(verdict(none)).to.deep.include({ dmarc: 'none', policy: undefined });
    dns.set('_dmarc.example.org', 'TXT', ['v=DMARC1; p=none']);
    const monitored = await check(message, { ip: '192.0.2.9' });
    expect(verdict(monitored)).to.deep.include({
      dmarc: 'fail',
      policy: 'none',
    });
    const noDomain = buildMessage({
      from: 'undisclosed-recipients:;',
      to: 'b@dest.test',
    });
    const skipped = await check(noDomain);
    expect([skipped.dmarc, skipped.dmarcSkipReason]).to.deep.equal([
      false,
      'no-author-domain',
    ]);
  });

  it('reports a changed body as dkim neutral and a wrong key as dkim fail', async () => {
    const signed = (await org.sign(message)).toString();
    const changed = await check(signed.replace('Hello.', 'Hello!'), {
      ip: '192.0.2.9',
    });
    expect(verdict(changed)).to.deep.include({
      dkim: ['neutral (example.org)'],
      dmarc: 'fail',
    });
    expect(changed.dkim.results[0]!.status.comment).to.equal(
      'body hash did not verify',
    );
    dns.set('s1._domainkey.example.org', 'TXT', [
      (await dkimKey('other', 1024)).record,
    ]);
    const wrongKey = await check(signed, { ip: '192.0.2.9' });
    expect(verdict(wrongKey)).to.deep.include({
      dkim: ['fail (example.org)'],
      dmarc: 'fail',
    });
  });

  it('verifies a DKIM key record over 512 bytes (fetched over TCP)', async () => {
    const key = await dkimKey();
    dns.set('long._domainkey.example.org', 'TXT', [
      `${key.record}; n=${'x'.repeat(300)}`,
    ]);
    const signed = await signDkim(message, {
      domain: 'example.org',
      selector: 'long',
      key,
    });
    const r = await check(signed, { ip: '192.0.2.9' });
    expect(verdict(r)).to.deep.include({
      dkim: ['pass (example.org)'],
      dmarc: 'pass',
    });
    expect(
      dns.queries
        .filter(q => q.name === 'long._domainkey.example.org')
        .map(q => q.transport),
    ).to.deep.equal(['udp', 'tcp']);
  });

  it('reports SERVFAIL as temperror on the check that asked', async () => {
    const signed = await org.sign(message);
    dns.fail('example.org', 'SERVFAIL', 'TXT');
    const spf = await check(signed);
    expect(verdict(spf)).to.deep.include({ spf: 'temperror', dmarc: 'pass' });
    expect(spf.spf && spf.spf.status.comment).to.match(
      /ESERVFAIL example\.org$/,
    );
    dns.heal('example.org').fail('s1._domainkey.example.org', 'SERVFAIL');
    const dkim = await check(signed);
    expect(verdict(dkim)).to.deep.include({
      dkim: ['temperror (example.org)'],
      dmarc: 'pass',
    });
    expect(dkim.dkim.results[0]!.status.comment).to.equal(
      'DNS failure: ESERVFAIL',
    );
    dns
      .heal('s1._domainkey.example.org')
      .fail('_dmarc.example.org', 'SERVFAIL');
    const dmarc = await check(signed);
    expect(verdict(dmarc)).to.deep.include({
      dmarc: 'temperror',
      policy: undefined,
    });
    expect(dmarc.dmarc && dmarc.dmarc.error).to.equal(
      'queryTxt ESERVFAIL _dmarc.example.org',
    );
  });

  it('reports a DNS timeout as temperror on the check that asked', async () => {
    // three domains, one dropped name each, checked at once: c-ares waits at least 250 ms
    const ds = await Promise.all(
      ['t1.test', 't2.test', 't3.test'].map(d =>
        domainWithAuth(dns, d, {
          spf: 'v=spf1 ip4:127.0.0.1 -all',
          dmarc: 'v=DMARC1; p=reject',
          dkimSelector: 's1',
        }),
      ),
    );
    const dropped = ['s1._domainkey.t1.test', 't2.test', '_dmarc.t3.test'];
    for (const name of dropped) dns.drop(name, 'TXT');
    // the dropped names go to a resolver that gives up at once (c-ares: after 250 ms), the
    // others to one with time to spare, so a slow answer on a loaded machine fails nothing
    const fast = mailauthResolver(
      resolverFor(dns.address, { timeout: 50, tries: 1 }),
    );
    const patient = mailauthResolver(resolverFor(dns.address));
    const resolver: DNSResolver = (name, rrtype) =>
      (dropped.includes(name) ? fast : patient)(name, rrtype);
    const [r1, r2, r3] = await Promise.all(
      ds.map(async d => {
        const msg = buildMessage({ from: `a@${d.domain}`, to: 'b@dest.test' });
        return check(await d.sign(msg), { sender: `a@${d.domain}`, resolver });
      }),
    );
    expect(verdict(r1!)).to.deep.include({
      spf: 'pass',
      dkim: ['temperror (t1.test)'],
      dmarc: 'pass',
    });
    expect(r1!.dkim.results[0]!.status.comment).to.equal(
      'DNS failure: ETIMEOUT',
    );
    expect(verdict(r2!)).to.deep.include({ spf: 'temperror', dmarc: 'pass' });
    expect(r2!.spf && r2!.spf.status.comment).to.match(/DNS timeout$/);
    expect(verdict(r3!)).to.deep.include({
      spf: 'pass',
      dmarc: 'temperror',
      policy: undefined,
    });
    expect(r3!.dmarc && r3!.dmarc.error).to.equal(
      'queryTxt ETIMEOUT _dmarc.t3.test',
    );
  });

  it('passes ARC for a forwarder that broke SPF and DKIM but sealed what it saw', async () => {
    const list = await domainWithAuth(dns, 'list.test', {
      spf: 'v=spf1 ip4:127.0.0.2 -all',
      dkimSelector: 'arc',
    });
    const forwarded = await arcForward(await org.sign(message), {
      received: {
        ip: '127.0.0.1',
        helo: 'mail.example.org',
        sender: 'a@example.org',
        mta: 'list.test',
        resolver: mailauthResolver(resolverFor(dns.address)),
      },
      seal: { domain: 'list.test', selector: 'arc', key: list.key },
      modify: m =>
        Buffer.from(
          m.toString().replace('Hello.', 'Hello.\r\n--\r\nlist footer'),
        ),
    });
    const smtp = {
      ip: '127.0.0.2',
      helo: 'list.test',
      sender: 'bounces@list.test',
    };
    const r = await check(forwarded, smtp);
    expect(verdict(r)).to.deep.equal({
      spf: 'pass', // for list.test, not aligned with example.org
      dkim: ['neutral (example.org)'],
      dmarc: 'fail',
      policy: 'reject',
      arc: 'pass',
    });
    expect(r.dmarc && r.dmarc.status.comment).to.equal('p=REJECT arc=pass');
    const arc = r.arc ? r.arc : expect.fail('no ARC result');
    expect(arc.i).to.equal(1);
    const seen = arc.authenticationResults as Record<
      string,
      { result?: string }
    >;
    expect([seen.spf?.result, seen.dmarc?.result]).to.deep.equal([
      'pass',
      'pass',
    ]);
    // a change after the seal breaks the chain
    const tampered = forwarded
      .toString()
      .replace('list footer', 'changed footer');
    expect(verdict(await check(tampered, smtp)).arc).to.equal('fail');
  });
});
