// Unit table for cleanHeaderText: what a header-derived value of the API body may carry.
import { expect } from 'chai';
import { cleanHeaderText } from '../../src/map/header-text.js';

describe('cleanHeaderText', () => {
  const rows: Array<[title: string, value: string, clean: string]> = [
    ['plain text untouched', 'Printer on fire', 'Printer on fire'],
    ['non-ASCII untouched', 'Grüße – 件名 🎉', 'Grüße – 件名 🎉'],
    ['spaces untouched, even in runs', ' a  b ', ' a  b '],
    [
      'CRLF becomes one space (header injection)',
      'Hello\r\nBcc: victim@example.net',
      'Hello Bcc: victim@example.net',
    ],
    ['a bare CR becomes a space', 'a\rb', 'a b'],
    ['a bare LF becomes a space', 'a\nb', 'a b'],
    ['TAB becomes a space', 'a\tb', 'a b'],
    ['VT, FF and NEL become a space', 'a\u000bb\u000cc\u0085d', 'a b c d'],
    ['a run of breaks becomes one space', 'a\r\n\r\n\t b', 'a  b'],
    ['NUL removed', 'a\u0000b', 'ab'],
    ['BEL, BS and ESC removed', 'a\u0007b\u0008c\u001bd', 'abcd'],
    ['DEL removed', 'a\u007fb', 'ab'],
    ['C1 controls removed', 'a\u0080b\u009bc\u009fd', 'abcd'],
    ['no-break space (not a control) kept', 'a\u00a0b', 'a\u00a0b'],
    ['only controls: nothing left', '\u0000\u0001\u007f', ''],
    ['empty', '', ''],
  ];
  for (const [title, value, clean] of rows) {
    it(title, () => {
      expect(cleanHeaderText(value)).to.equal(clean);
    });
  }
});
