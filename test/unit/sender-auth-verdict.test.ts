// auth/verdict.ts, table-driven: what mailauth's results make of a sender, and what each route
// policy does with that judgement.
import { expect } from 'chai';
import type { AuthenticateResult } from 'mailauth';
import { countSignatures } from '../../src/auth/sender-auth.js';
import {
  describe as describeAuth,
  routeAction,
  summarise,
  type SenderAuth,
} from '../../src/auth/verdict.js';

/** An authenticate() result with the fields summarise reads. */
function result(parts: {
  from?: string[];
  spf?: string;
  spfDomain?: string;
  dkim?: Array<{ result: string; aligned?: string | false }>;
  dmarc?: { result: string; policy?: string } | false;
  arc?: string;
}): AuthenticateResult {
  const from = parts.from ?? ['jane@example.org'];
  return {
    dkim: {
      headerFrom: from,
      fromFields: 1,
      envelopeFrom: false,
      results: (parts.dkim ?? []).map(d => ({
        status: { result: d.result, aligned: d.aligned ?? false },
      })),
    },
    spf: parts.spf
      ? {
          domain: parts.spfDomain ?? 'example.org',
          status: { result: parts.spf },
        }
      : false,
    dmarc:
      parts.dmarc === false
        ? false
        : {
            status: {
              result: parts.dmarc?.result ?? 'none',
              header: { from: from[0]!.split('@')[1] },
            },
            policy: parts.dmarc?.policy,
          },
    arc: parts.arc ? { status: { result: parts.arc } } : false,
  } as unknown as AuthenticateResult;
}

describe('sender authentication: the verdict (auth/verdict.ts)', () => {
  const cases: Array<
    [string, Parameters<typeof result>[0], SenderAuth['verdict']]
  > = [
    [
      'DMARC pass',
      { spf: 'pass', dmarc: { result: 'pass', policy: 'reject' } },
      'pass',
    ],
    [
      'DMARC fail, p=reject',
      { spf: 'fail', dmarc: { result: 'fail', policy: 'reject' } },
      'fail',
    ],
    [
      'DMARC fail, p=none',
      { spf: 'softfail', dmarc: { result: 'fail', policy: 'none' } },
      'fail',
    ],
    [
      'DMARC temperror',
      { spf: 'temperror', dmarc: { result: 'temperror' } },
      'temperror',
    ],
    [
      'no DMARC record, aligned SPF pass',
      { spf: 'pass', spfDomain: 'bounces.example.org' },
      'pass',
    ],
    [
      'no DMARC record, SPF pass of another domain',
      { spf: 'pass', spfDomain: 'mailer.example.net' },
      'none',
    ],
    [
      'no DMARC record, aligned DKIM pass',
      { dkim: [{ result: 'pass', aligned: 'example.org' }] },
      'pass',
    ],
    [
      'no DMARC record, unaligned DKIM pass',
      { dkim: [{ result: 'pass', aligned: false }] },
      'none',
    ],
    ['no DMARC record, SPF fail', { spf: 'fail' }, 'none'],
    ['no DMARC record, nothing at all', {}, 'none'],
    [
      'no single From domain (DMARC not evaluated)',
      { from: ['a@x.example', 'b@y.example'], dmarc: false },
      'fail',
    ],
  ];
  for (const [name, parts, verdict] of cases) {
    it(`${name}: ${verdict}`, () => {
      expect(summarise(result(parts)).verdict).to.equal(verdict);
    });
  }

  it('keeps each result, the policy and the From domain', () => {
    const auth = summarise(
      result({
        spf: 'softfail',
        dkim: [{ result: 'fail' }, { result: 'pass', aligned: false }],
        dmarc: { result: 'fail', policy: 'quarantine' },
        arc: 'pass',
      }),
    );
    expect(auth).to.deep.equal({
      spf: 'softfail',
      dkim: 'pass',
      dmarc: 'fail',
      policy: 'quarantine',
      arc: 'pass',
      domain: 'example.org',
      verdict: 'fail',
    });
    expect(describeAuth(auth)).to.equal(
      'dmarc=fail (p=quarantine) spf=softfail dkim=pass arc=pass for example.org',
    );
  });
});

describe('sender authentication: what a route does (routeAction)', () => {
  const judged = (
    verdict: SenderAuth['verdict'],
    dmarc: string,
    policy?: string,
  ): SenderAuth => ({
    spf: 'none',
    dkim: 'none',
    arc: 'none',
    dmarc,
    policy,
    verdict,
  });
  const reject = judged('fail', 'fail', 'reject');
  const quarantine = judged('fail', 'fail', 'quarantine');
  const monitored = judged('fail', 'fail', 'none');
  const noDomain = judged('fail', 'none');
  const pass = judged('pass', 'pass', 'reject');
  const none = judged('none', 'none');
  const dns = judged('temperror', 'temperror');
  const late: SenderAuth = { ...dns, late: true };
  const cases: Array<
    [
      Parameters<typeof routeAction>[0],
      SenderAuth | undefined,
      'data' | 'attempt',
      string,
    ]
  > = [
    ['off', reject, 'data', 'post'],
    ['off', reject, 'attempt', 'post'],
    ['record', reject, 'attempt', 'guard'],
    ['record', monitored, 'attempt', 'guard'],
    ['record', noDomain, 'attempt', 'guard'],
    ['record', pass, 'attempt', 'post'],
    ['record', none, 'attempt', 'post'],
    ['record', dns, 'attempt', 'post'],
    ['record', undefined, 'attempt', 'post'],
    ['enforce', reject, 'data', 'reject'],
    ['enforce', reject, 'attempt', 'hold'],
    ['enforce', quarantine, 'data', 'hold'],
    ['enforce', quarantine, 'attempt', 'hold'],
    ['enforce', monitored, 'attempt', 'guard'],
    ['enforce', noDomain, 'data', 'guard'],
    ['enforce', pass, 'data', 'post'],
    ['enforce', none, 'data', 'post'],
    ['enforce', dns, 'data', 'defer'],
    ['enforce', dns, 'attempt', 'defer'],
    // out of time: slowness a stranger can buy with their own DNS buys no thread
    ['record', late, 'attempt', 'guard'],
    ['enforce', late, 'data', 'defer'],
    ['off', late, 'attempt', 'post'],
  ];
  for (const [policy, auth, stage, action] of cases) {
    const what = auth
      ? `${auth.verdict} (dmarc=${auth.dmarc}, p=${auth.policy ?? '-'})`
      : 'not judged';
    it(`${policy}, ${what}, at ${stage}: ${action}`, () => {
      expect(routeAction(policy, auth, stage)).to.equal(action);
    });
  }
});

describe('sender authentication: signature fields counted before mailauth (countSignatures)', () => {
  const cases: Array<[string, string, number]> = [
    ['none', 'From: a@b.example\r\nSubject: x', 0],
    ['one DKIM', 'DKIM-Signature: v=1; d=b.example\r\nFrom: a@b.example', 1],
    [
      'any case, space before the colon',
      'dkim-signature : v=1\r\nDKIM-SIGNATURE:v=1',
      2,
    ],
    [
      'an ARC set counts its seal and message signature, not its results',
      'ARC-Seal: i=1\r\nARC-Message-Signature: i=1\r\nARC-Authentication-Results: i=1',
      2,
    ],
    [
      'a folded value that mentions one is not one',
      'Subject: about\r\n dkim-signature: no',
      0,
    ],
  ];
  for (const [name, header, count] of cases) {
    it(`${name}: ${count}`, () => {
      expect(countSignatures(Buffer.from(header))).to.equal(count);
    });
  }
});
