// The fuzzer's mutators (fuzz/mutators/): pure and repeatable for every one of them on every kind
// of input, and each doing what its name says, row by row.
import { expect } from 'chai';
import {
  MUTATORS,
  mutatorAt,
  mutatorNamed,
} from '../../fuzz/mutators/index.js';
import {
  boundariesOf,
  headerFields,
  splitMessage,
} from '../../fuzz/mutators/text.js';
import { createRng } from '../../fuzz/rng.js';

const PLAIN = Buffer.from(
  'From: Jane <jane@example.net>\r\nTo: support@example.com\r\n' +
    'Subject: Printer\r\nMessage-ID: <a@example.net>\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n.\r\nBye.\r\n',
  'latin1',
);

const MULTIPART = Buffer.from(
  [
    'From: jane@example.net',
    'Subject: =?utf-8?B?w6l0w6k=?=',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'caf=E9',
    '--b1',
    'Content-Type: application/octet-stream; name="a.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    'AAECAwQF',
    '--b1--',
    '',
  ].join('\r\n'),
  'latin1',
);

/** Inputs every mutator must take: ordinary, multipart, bare LF, no body, nothing at all. */
const INPUTS: Array<[string, Buffer]> = [
  ['a plain message', PLAIN],
  ['a multipart message', MULTIPART],
  [
    'bare LF line ends',
    Buffer.from(PLAIN.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'),
  ],
  ['a header block alone', Buffer.from('Subject: x\r\n', 'latin1')],
  ['an empty message', Buffer.alloc(0)],
];

const LIMIT = 8 * 1024 * 1024;

describe('fuzz mutators: every one, on every input', () => {
  for (const { name, mutate } of MUTATORS) {
    for (const [what, input] of INPUTS) {
      it(`${name} on ${what}: a Buffer, the same for the same seed, input untouched`, () => {
        const before = Buffer.from(input);
        for (let seed = 1; seed <= 12; seed++) {
          const first = mutate(input, createRng(seed));
          const again = mutate(input, createRng(seed));
          expect(Buffer.isBuffer(first)).to.equal(true);
          expect(first.equals(again), `seed ${seed}`).to.equal(true);
          expect(first.length).to.be.below(LIMIT);
        }
        expect(input.equals(before)).to.equal(true);
      });
    }
    it(`${name} changes a multipart message for most seeds`, () => {
      let changed = 0;
      for (let seed = 1; seed <= 20; seed++) {
        if (!mutate(MULTIPART, createRng(seed)).equals(MULTIPART)) changed++;
      }
      expect(changed).to.be.at.least(15);
    });
  }
});

/** What a mutator's output must show, for seeds 1 to 20 on the multipart message. */
const ROWS: Array<[string, (out: Buffer, input: Buffer) => boolean]> = [
  [
    'truncate',
    (out, input) =>
      input.subarray(0, out.length).equals(out) && out.length < input.length,
  ],
  ['bitFlip', (out, input) => out.length === input.length],
  ['nulBytes', out => out.includes(0)],
  [
    'overlongLine',
    out =>
      out
        .toString('latin1')
        .split('\n')
        .some(l => l.length >= 999),
  ],
  ['lineEnds', out => /[^\r]\n|\r[^\n]|\r$/.test(out.toString('latin1'))],
  [
    'giantHeader',
    (out, input) =>
      splitMessage(out.toString('latin1')).head.length >=
      splitMessage(input.toString('latin1')).head.length + 1024,
  ],
  [
    'manyHeaders',
    (out, input) =>
      headerFields(splitMessage(out.toString('latin1')).head).length >=
      headerFields(splitMessage(input.toString('latin1')).head).length + 10,
  ],
  [
    'eightBitHeaders',
    out => /[\x80-\xff]/.test(splitMessage(out.toString('latin1')).head),
  ],
  [
    'deepNesting',
    out => boundariesOf(out.toString('latin1')).some(b => b.startsWith('fz0_')),
  ],
  [
    'manyParts',
    out =>
      boundariesOf(out.toString('latin1')).some(b => b.startsWith('fzparts_')),
  ],
  [
    'foldedHeader',
    (out, input) =>
      out.toString('latin1').split('\n').length >
      input.toString('latin1').split('\n').length,
  ],
];

describe('fuzz mutators: what each one does', () => {
  for (const [name, holds] of ROWS) {
    it(`${name}`, () => {
      const { mutate } = mutatorNamed(name);
      for (let seed = 1; seed <= 20; seed++) {
        const out = mutate(MULTIPART, createRng(seed));
        expect(holds(out, MULTIPART), `seed ${seed}`).to.equal(true);
      }
    });
  }

  it('deepNesting goes past the structure limit of 100 levels for some seeds, not for most', () => {
    const depths = Array.from({ length: 200 }, (_, seed) => {
      const out = mutatorNamed('deepNesting').mutate(PLAIN, createRng(seed));
      return boundariesOf(out.toString('latin1')).length;
    });
    expect(depths.filter(d => d > 100).length).to.be.within(1, 100);
  });

  it('manyHeaders repeats a giant field only up to 16 MiB (seed 1908753435, case 16493 threw)', () => {
    const giant = Buffer.concat([
      Buffer.from(`X-Giant: ${'g'.repeat(64 * 1024)}\r\n`, 'latin1'),
      PLAIN,
    ]);
    let repeats = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const out = mutatorNamed('manyHeaders').mutate(giant, createRng(seed));
      expect(out.length, `seed ${seed}`).to.be.below(17 * 1024 * 1024);
      const copies = out.toString('latin1').split('X-Giant:').length - 1;
      repeats = Math.max(repeats, copies);
    }
    // some seed did repeat the giant field, and past 60,000 x 64 KiB it would not be made
    expect(repeats).to.be.above(100);
  });

  it('mutatorAt spreads draws by weight over every mutator', () => {
    const seen = new Set<string>();
    for (let draw = 0; draw < 1; draw += 0.001) seen.add(mutatorAt(draw).name);
    expect([...seen].sort()).to.deep.equal(MUTATORS.map(m => m.name).sort());
    expect(() => mutatorNamed('nope')).to.throw('no mutator named nope');
  });
});
