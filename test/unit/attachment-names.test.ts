// Unit table for safeFilename: a sender's attachment name made safe to show and to save.
import { expect } from 'chai';
import {
  givenName,
  MAX_FILENAME_BYTES,
  safeFilename,
} from '../../src/parse/attachment-names.js';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

describe('safeFilename', () => {
  const rows: Array<[title: string, name: string | null, safe: string | null]> =
    [
      ['a plain name', 'report.pdf', 'report.pdf'],
      ['non-ASCII kept', 'résumé été.txt', 'résumé été.txt'],
      [
        'a Persian name keeps its ZWNJ',
        'می\u200cخواهم.txt',
        'می\u200cخواهم.txt',
      ],
      ['a Unix path: the last segment', '/etc/passwd', 'passwd'],
      ['a Windows path: the last segment', 'C:\\Users\\x\\a.doc', 'a.doc'],
      ['a climbing path', '../../.ssh/authorized_keys', 'authorized_keys'],
      ['surrounding spaces trimmed', '  a.txt  ', 'a.txt'],
      ['CR, LF and TAB removed', 'a\r\nb\t.txt', 'ab.txt'],
      ['NUL and DEL removed', 'a\u0000b\u007f.txt', 'ab.txt'],
      ['C1 controls removed', 'a\u0085b\u009b.txt', 'ab.txt'],
      [
        'a right-to-left override removed (regression: shown as invoiceexe.jpg)',
        'invoice\u202egpj.exe',
        'invoicegpj.exe',
      ],
      [
        'every bidi embedding, override, isolate and mark removed',
        '\u202aa\u202bb\u202cc\u202dd\u2066e\u2067f\u2068g\u2069h\u200ei\u200fj\u061ck.txt',
        'abcdefghijk.txt',
      ],
      ['nothing left but controls and bidi: null', '\u202e\r\n', null],
      ['a bare dot: null', '.', null],
      ['a bare dot-dot after a path: null', 'a/..', null],
      ['a path ending in a slash: null', 'dir/', null],
      ['empty: null', '', null],
      ['null: null', null, null],
    ];
  for (const [title, name, safe] of rows) {
    it(title, () => {
      expect(safeFilename(name)).to.equal(safe);
    });
  }

  describe(`the length: at most ${MAX_FILENAME_BYTES} bytes of UTF-8, the extension kept`, () => {
    const rows: Array<[title: string, name: string, safe: string]> = [
      [
        `exactly ${MAX_FILENAME_BYTES} bytes: untouched`,
        `${'a'.repeat(MAX_FILENAME_BYTES - 4)}.pdf`,
        `${'a'.repeat(MAX_FILENAME_BYTES - 4)}.pdf`,
      ],
      [
        'one byte more: the stem shortened by one',
        `${'a'.repeat(MAX_FILENAME_BYTES - 3)}.pdf`,
        `${'a'.repeat(MAX_FILENAME_BYTES - 4)}.pdf`,
      ],
      [
        '5,000 characters (regression): cut, extension kept',
        `${'x'.repeat(4996)}.exe`,
        `${'x'.repeat(MAX_FILENAME_BYTES - 4)}.exe`,
      ],
      [
        'multi-byte characters cut whole (3 bytes each)',
        `${'件'.repeat(100)}.txt`,
        `${'件'.repeat(83)}.txt`,
      ],
      [
        'an emoji sequence is never split',
        `${'a'.repeat(245)}👩‍👩‍👧.txt`,
        `${'a'.repeat(245)}.txt`,
      ],
      [
        'an accent stays with its letter or goes with it',
        `${'a'.repeat(246)}e\u0301e\u0301.txt`,
        `${'a'.repeat(246)}e\u0301.txt`,
      ],
      [
        'spaces left at the cut are trimmed',
        `${'a'.repeat(248)}    ${'b'.repeat(20)}.txt`,
        `${'a'.repeat(248)}.txt`,
      ],
      [
        'no extension: the name cut',
        'n'.repeat(300),
        'n'.repeat(MAX_FILENAME_BYTES),
      ],
      [
        'an "extension" too long to be one: the name cut as a whole',
        `a.${'b'.repeat(300)}`,
        `a.${'b'.repeat(MAX_FILENAME_BYTES - 2)}`,
      ],
      [
        'the extension of a dot-file name is not the whole name',
        `.${'c'.repeat(300)}`,
        `.${'c'.repeat(MAX_FILENAME_BYTES - 1)}`,
      ],
      [
        'bidi characters removed before the length is counted',
        `${'\u202e'.repeat(100)}${'a'.repeat(200)}.pdf`,
        `${'a'.repeat(200)}.pdf`,
      ],
    ];
    for (const [title, name, safe] of rows) {
      it(title, () => {
        const out = safeFilename(name);
        expect(out).to.equal(safe);
        expect(bytes(out!)).to.be.at.most(MAX_FILENAME_BYTES);
      });
    }

    it('a name of one grapheme too long to fit keeps its extension alone', () => {
      const name = `a${'\u0301'.repeat(201)}.pdf`;
      expect(safeFilename(name)).to.equal('.pdf');
    });
  });
});

describe("attachment names: a given name without an extension gets its type's", () => {
  const cases: Array<[string | null, string, string | null]> = [
    [
      'Portion de message joint',
      'text/calendar',
      'Portion de message joint.ics',
    ],
    ['message suivi', 'message/rfc822', 'message suivi.eml'],
    ['report', 'message/feedback-report', 'report.txt'],
    ['invite.ics', 'text/calendar', 'invite.ics'],
    ['README', 'application/x-unknown', 'README'],
    [null, 'text/calendar', null],
  ];
  for (const [filename, contentType, name] of cases) {
    it(`${JSON.stringify(filename)} (${contentType}) -> ${JSON.stringify(name)}`, () => {
      expect(givenName({ filename, contentType })).to.equal(name);
    });
  }
});
