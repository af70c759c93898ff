// The fuzzer's harness (fuzz/): seeded randomness and cases that repeat, the raw client's
// dot-stuffing and reply parsing, the stand-in's answers and payload checks, and the books.
import { expect } from 'chai';
import { account, type SpoolCensus } from '../../fuzz/accounting.js';
import { loadCorpus, makeCase } from '../../fuzz/cases.js';
import { codeKey } from '../../fuzz/report.js';
import { caseSeed, createRng } from '../../fuzz/rng.js';
import { dotStuff, ReplyParser } from '../../fuzz/smtp-wire.js';
import { answerFor, payloadProblems } from '../../fuzz/stand-in-api.js';

describe('fuzz rng and cases', () => {
  it('a seed gives the same draws, another seed others', () => {
    const draws = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 8 }, () => rng.next());
    };
    expect(draws(7)).to.deep.equal(draws(7));
    expect(draws(7)).not.to.deep.equal(draws(8));
  });

  it('int, logInt and pick stay within their bounds', () => {
    const rng = createRng(1);
    for (let i = 0; i < 2000; i++) {
      expect(rng.int(3, 5)).to.be.within(3, 5);
      expect(rng.logInt(999, 6_000_000)).to.be.within(999, 6_000_000);
      expect(['a', 'b']).to.include(rng.pick(['a', 'b']));
    }
    expect(() => rng.pick([])).to.throw('empty');
  });

  it('neighbouring cases and seeds get unrelated case seeds', () => {
    const seeds = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      seeds.add(caseSeed(1, i));
      seeds.add(caseSeed(2, i));
    }
    expect(seeds.size).to.equal(2000);
  });

  it('case N of seed S is the same whenever it is made', () => {
    const corpus = loadCorpus();
    expect(corpus.length).to.be.above(100);
    for (const index of [0, 1, 99, 4321]) {
      const first = makeCase(corpus, 42, index);
      const again = makeCase(corpus, 42, index);
      expect(again.source).to.equal(first.source);
      expect(again.mutators).to.deep.equal(first.mutators);
      expect(again.bytes.equals(first.bytes)).to.equal(true);
    }
  });
});

describe('dotStuff', () => {
  const ROWS: Array<[string, string]> = [
    ['a\r\n', 'a\r\n.\r\n'],
    ['a', 'a\r\n.\r\n'],
    ['', '\r\n.\r\n'],
    ['.a\r\n', '..a\r\n.\r\n'],
    ['a\r\n.\r\nb', 'a\r\n..\r\nb\r\n.\r\n'],
    // smtp-server takes a dot off after a bare LF too
    ['a\n.b\n', 'a\n..b\n\r\n.\r\n'],
    ['a\r.b', 'a\r.b\r\n.\r\n'],
  ];
  for (const [message, wire] of ROWS) {
    it(`${JSON.stringify(message)} -> ${JSON.stringify(wire)}`, () => {
      expect(
        dotStuff(Buffer.from(message, 'latin1')).toString('latin1'),
      ).to.equal(wire);
    });
  }
});

describe('ReplyParser', () => {
  it('joins multi-line replies and keeps a partial line for the next chunk', () => {
    const parser = new ReplyParser();
    expect(parser.feed('220 hi\r\n250-a\r\n250-SIZE 10\r')).to.deep.equal([
      { code: 220, text: '220 hi' },
    ]);
    expect(parser.feed('\n250 8BITMIME\r\n421 4.4.2 bye')).to.deep.equal([
      { code: 250, text: '250-a\n250-SIZE 10\n250 8BITMIME' },
    ]);
    expect(parser.feed('\r\n')).to.deep.equal([
      { code: 421, text: '421 4.4.2 bye' },
    ]);
  });
});

describe('codeKey', () => {
  it('counts a reply by its code and enhanced status, with the stage before DATA ended', () => {
    const reply = (stage: 'mail' | 'message', text: string) =>
      ({ kind: 'reply', stage, code: Number(text.slice(0, 3)), text }) as const;
    expect(codeKey(reply('message', '250 2.6.0 OK: queued as X'))).to.equal(
      '250 2.6.0',
    );
    expect(codeKey(reply('mail', '552 5.3.4 too big'))).to.equal(
      '552 5.3.4 at MAIL',
    );
    expect(codeKey(reply('message', '451 try later'))).to.equal('451');
    const dropped = {
      kind: 'dropped',
      stage: 'data',
      detail: 'closed',
    } as const;
    expect(codeKey(dropped)).to.equal('no reply (data)');
  });
});

describe('the stand-in API', () => {
  it('answers 422 to about one key in 20, 503 to another once, 204 to the rest', () => {
    const keys = Array.from({ length: 4000 }, (_, i) => `key-${i}`);
    const refused = keys.filter(k => answerFor(k, 0) === 422);
    const unavailable = keys.filter(k => answerFor(k, 0) === 503);
    expect(refused.length).to.be.within(120, 280);
    expect(unavailable.length).to.be.within(120, 280);
    for (const key of unavailable) expect(answerFor(key, 1)).to.equal(204);
    for (const key of refused) expect(answerFor(key, 3)).to.equal(422);
  });

  const ROWS: Array<[string, unknown, string[]]> = [
    ['a clean body', { from: 'a@b', subject: 'Hi', ext_msg_id: '<x@y>' }, []],
    ['not JSON', '{', ['the body is not JSON']],
    ['a list', [], ['the body is not a JSON object']],
    [
      'a CR in the subject',
      { subject: 'a\rb', ext_msg_id: '<x>' },
      ['subject has a control character'],
    ],
    [
      'a C1 control in from',
      { from: 'a\u0085b', ext_msg_id: '<x>' },
      ['from has a control character'],
    ],
    ['an empty cc', { cc: '', ext_msg_id: '<x>' }, ['cc is an empty string']],
    ['no ext_msg_id', { subject: 'x' }, ['ext_msg_id is missing']],
    [
      'an attachment name with a path',
      { ext_msg_id: '<x>', attachments: [{ name: '../a.exe', file: 'AA==' }] },
      ['an attachment name has a path, control or bidi character'],
    ],
    [
      'an attachment name with a bidi override',
      {
        ext_msg_id: '<x>',
        attachments: [{ name: 'a\u202Egpj.exe', file: 'AA==' }],
      },
      ['an attachment name has a path, control or bidi character'],
    ],
    [
      'an attachment file that is not base64',
      { ext_msg_id: '<x>', attachments: [{ name: 'a', file: 'not base64!' }] },
      ['an attachment file is not base64'],
    ],
  ];
  for (const [what, body, problems] of ROWS) {
    it(`payload check: ${what}`, () => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      expect(payloadProblems(text)).to.deep.equal(problems);
    });
  }
});

describe('account', () => {
  const census = (over: Partial<SpoolCensus> = {}): SpoolCensus => ({
    waiting: [],
    claimed: [],
    dead: new Map(),
    held: [],
    states: new Map(),
    ...over,
  });

  it('balances when every 250 is posted, held or dead exactly once', () => {
    const books = account({
      accepted: ['A', 'B', 'C', 'D'],
      delivered: new Set(['A', 'B']),
      posted: 2,
      census: census({
        dead: new Map([['C', { reason: 'HTTP 422', status: 422 }]]),
        held: ['D'],
      }),
    });
    expect(books).to.include({
      accepted: 4,
      posted: 2,
      held: 1,
      dead: 1,
      balanced: true,
    });
    expect(books.problems).to.deep.equal([]);
  });

  const ROWS: Array<
    [
      string,
      Parameters<typeof account>[0],
      keyof ReturnType<typeof account>,
      string[],
    ]
  > = [
    [
      'a 250 with no outcome is lost',
      {
        accepted: ['A', 'B'],
        delivered: new Set(['A']),
        posted: 1,
        census: census(),
      },
      'lost',
      ['B'],
    ],
    [
      'an outcome without a 250 is unknown',
      {
        accepted: ['A'],
        delivered: new Set(['A', 'Z']),
        posted: 2,
        census: census(),
      },
      'unknown',
      ['Z'],
    ],
    [
      'delivered and dead is twice',
      {
        accepted: ['A'],
        delivered: new Set(['A']),
        posted: 1,
        census: census({ dead: new Map([['A', { reason: 'x' }]]) }),
      },
      'twice',
      ['A'],
    ],
    [
      'an entry left in queue/ is stuck',
      {
        accepted: ['A'],
        delivered: new Set(),
        posted: 0,
        census: census({ waiting: ['A'] }),
      },
      'stuck',
      ['A'],
    ],
    [
      'a queue id answered twice is repeated',
      {
        accepted: ['A', 'A'],
        delivered: new Set(['A']),
        posted: 1,
        census: census(),
      },
      'repeated',
      ['A'],
    ],
  ];
  for (const [what, ledger, key, ids] of ROWS) {
    it(what, () => {
      const books = account(ledger);
      expect(books[key]).to.deep.equal(ids);
      expect(books.balanced).to.equal(false);
    });
  }

  it('a transaction left without its final reply may have been taken: one outcome more is not held against it', () => {
    const ledger = {
      accepted: ['A'],
      delivered: new Set(['A', 'B']),
      posted: 2,
      census: census(),
    };
    expect(account({ ...ledger, unanswered: 1 }).balanced).to.equal(true);
    expect(account(ledger).balanced).to.equal(false);
  });

  it('more posts than delivered lines does not balance', () => {
    const books = account({
      accepted: ['A'],
      delivered: new Set(['A']),
      posted: 2,
      census: census(),
    });
    expect(books.balanced).to.equal(false);
    expect(books.problems.join('\n')).to.include('the API took 2 posts');
  });
});
