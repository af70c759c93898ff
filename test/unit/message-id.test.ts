// Unit tables for Message-ID normalisation: extractIds, normaliseId, formatId, generatedId.
import { expect } from 'chai';
import {
  extractIds,
  formatId,
  generatedId,
  normaliseId,
} from '../../src/mail/message-id.js';

describe('message-id', () => {
  describe('extractIds', () => {
    const rows: Array<
      [title: string, value: string | undefined, ids: string[]]
    > = [
      ['undefined', undefined, []],
      ['empty string', '', []],
      ['blank', ' \t\r\n ', []],
      ['one bracketed id', '<a@example.com>', ['<a@example.com>']],
      ['surrounding whitespace', '  <a@example.com>\r\n', ['<a@example.com>']],
      [
        'several ids, in order',
        '<a@x> <b@x>\t<c@x>',
        ['<a@x>', '<b@x>', '<c@x>'],
      ],
      ['ids without separators', '<a@x><b@x>', ['<a@x>', '<b@x>']],
      [
        'ids separated by commas',
        '<a@x>,<b@x>, <c@x>',
        ['<a@x>', '<b@x>', '<c@x>'],
      ],
      ['folded across lines', '<a@x>\r\n <b@x>', ['<a@x>', '<b@x>']],
      [
        'whitespace folded inside an id',
        '<a@exa\r\n mple.com>',
        ['<a@example.com>'],
      ],
      ['spaces inside the brackets', '< a@x >', ['<a@x>']],
      ['a trailing comment', '<a@x> (sent by relay)', ['<a@x>']],
      ['a leading comment', '(original) <a@x>', ['<a@x>']],
      ['a display phrase before the id', 'Your message <a@x>', ['<a@x>']],
      ['empty brackets only', '<>', []],
      ['empty brackets dropped among ids', '<> <a@x> < >', ['<a@x>']],
      ['missing brackets', 'a@example.com', ['<a@example.com>']],
      [
        'several ids without brackets',
        'a@x b@x, c@x',
        ['<a@x>', '<b@x>', '<c@x>'],
      ],
      ['missing brackets and a comment', 'a@x (comment)', ['<a@x>']],
      ['missing brackets, comment words split', 'a@x (two words)', ['<a@x>']],
      ['only a comment', '(no id here)', []],
      ['a comment fragment, as References words come', 'words)', []],
      ['a nested comment', '<a@x> (outer (inner) text)', ['<a@x>']],
      ['a comment holding an id', '<a@x> (was <b@x>)', ['<a@x>']],
      ['an unclosed comment', '<a@x> (unclosed', ['<a@x>']],
      // mailparser wraps the words of a comment in brackets
      ['a comment wrapped in brackets', '<a@x> <(resent)>', ['<a@x>']],
      [
        'a comment whose words were each wrapped',
        '<a@x> <(one> <two> <three)> <b@x>',
        ['<a@x>', '<b@x>'],
      ],
      ['an unclosed wrapped comment', '<a@x> <(unclosed>', ['<a@x>']],
      [
        'a Message-ID mailparser closed after its comment',
        '<m@x> (relay)>',
        ['<m@x>'],
      ],
      [
        'an In-Reply-To mailparser opened before its comment',
        '<(note) <p@x>',
        ['<p@x>'],
      ],
      ['an id without @ kept', '<1234.5678>', ['<1234.5678>']],
      ['unbalanced opening bracket', '<a@x', ['<a@x>']],
      ['unbalanced closing bracket', 'a@x>', ['<a@x>']],
      ['case kept', '<ABC.def@Example.COM>', ['<ABC.def@Example.COM>']],
    ];
    for (const [title, value, ids] of rows) {
      it(`${title}: ${JSON.stringify(value)}`, () => {
        expect(extractIds(value)).to.deep.equal(ids);
      });
    }
  });

  describe('normaliseId', () => {
    const rows: Array<[value: string, id: string | undefined]> = [
      ['<a@x>', '<a@x>'],
      ['a@x', '<a@x>'],
      ['<<a@x>>', '<a@x>'],
      ['<<<a@x>', '<a@x>'],
      ['  <a@x>  ', '<a@x>'],
      ['<a @ x>', '<a@x>'],
      ['<a@\r\n\tx>', '<a@x>'],
      ['<>', undefined],
      ['<<>>', undefined],
      ['', undefined],
      ['  ', undefined],
      ['><', '<><>'],
      ['<>>a>', '<>>a>'],
      ['a>>', '<a>'],
    ];
    for (const [value, id] of rows) {
      it(`${JSON.stringify(value)} -> ${String(id)}`, () => {
        expect(normaliseId(value)).to.equal(id);
      });
    }

    it('takes 1 MiB of ">" before another character in linear time', () => {
      // `/>+$/` tried every start of the run: seconds for 64 KiB
      const value = `${'>'.repeat(1024 * 1024)}x`;
      expect(normaliseId(value)).to.equal(`<${value}>`);
    });
  });

  describe('formatId', () => {
    const rows: Array<[id: string, brackets: boolean, out: string]> = [
      ['<a@x>', true, '<a@x>'],
      ['<a@x>', false, 'a@x'],
      ['<1234>', false, '1234'],
    ];
    for (const [id, brackets, out] of rows) {
      it(`${id} brackets=${brackets} -> ${out}`, () => {
        expect(formatId(id, brackets)).to.equal(out);
      });
    }
  });

  describe('generatedId', () => {
    const a = 'ab'.repeat(32);
    const b = 'cd'.repeat(32);
    const rows: Array<[title: string, check: () => void]> = [
      [
        'the first 40 hex digits of the digest at mailbridge.generated',
        () =>
          expect(generatedId(a)).to.equal(
            `<${'ab'.repeat(20)}@mailbridge.generated>`,
          ),
      ],
      [
        'stable: the same digest gives the same id',
        () => expect(generatedId(a)).to.equal(generatedId(a)),
      ],
      [
        'another digest gives another id',
        () => expect(generatedId(a)).to.not.equal(generatedId(b)),
      ],
      [
        'already normalised: extractIds leaves it as it is',
        () =>
          expect(extractIds(generatedId(a))).to.deep.equal([generatedId(a)]),
      ],
    ];
    for (const [title, check] of rows) it(title, check);
  });
});

// Regression: comments were stripped one innermost pair per pass, O(n²) on the event loop; a
// Message-ID of 32,000 nested parentheses took 2 s per message inside DATA.
describe('extractIds on hostile input', () => {
  // the quadratic version needed minutes here, far past mocha's timeout
  it('strips 100,000 nested parentheses and keeps the id', () => {
    const nested = '('.repeat(100_000) + 'x' + ')'.repeat(100_000);
    expect(extractIds(`${nested} <a@b>`)).to.deep.equal(['<a@b>']);
    expect(extractIds(`<a@b> ${'('.repeat(50_000)}`)).to.deep.equal(['<a@b>']);
  });
});
