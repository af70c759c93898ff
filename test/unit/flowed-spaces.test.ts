// format=flowed; delsp=yes from a sender that did not double the space it wrapped at.
import { expect } from 'chai';
import { restoreWordSpaces } from '../../src/parse/flowed-spaces.js';

describe('restoreWordSpaces (flowed text, DelSp=yes)', () => {
  const rows: Array<[title: string, input: string, output: string]> = [
    [
      'MimeKit issue 1130: one space between words at each break -> one added',
      'but now there is \r\na "You" at the bottom of the \r\nrecord\r\n',
      'but now there is  \r\na "You" at the bottom of the  \r\nrecord\r\n',
    ],
    ['LF line ends as well', 'there is \na word\n', 'there is  \na word\n'],
    [
      'a sender that doubles its spaces somewhere knows DelSp: unchanged',
      'there is  \r\na word, and a long\u00e9 \r\nword\r\n',
      'there is  \r\na word, and a long\u00e9 \r\nword\r\n',
    ],
    [
      'a break inside a URL: unchanged',
      'see https://example.com/pa \r\nth/to\r\n',
      'see https://example.com/pa \r\nth/to\r\n',
    ],
    [
      'CJK (ISO-2022-JP bytes): unchanged',
      '\x1b$B$3$l$O\x1b(B \r\n\x1b$B%F%9%H\x1b(B\r\n',
      '\x1b$B$3$l$O\x1b(B \r\n\x1b$B%F%9%H\x1b(B\r\n',
    ],
    [
      'the signature separator is no flowed line',
      'Bye\r\n-- \r\nJane\r\n',
      'Bye\r\n-- \r\nJane\r\n',
    ],
    [
      'a quoted break between words',
      '> it is \r\n> a test\r\n',
      '> it is  \r\n> a test\r\n',
    ],
    [
      'the next line begins with no letter: that break is kept as it is',
      'a word \r\n42 and more words \r\nhere\r\n',
      'a word \r\n42 and more words  \r\nhere\r\n',
    ],
    ['no flowed line at all', 'one\r\ntwo\r\n', 'one\r\ntwo\r\n'],
  ];
  for (const [title, input, output] of rows) {
    it(title, () => {
      expect(restoreWordSpaces(input)).to.equal(output);
    });
  }
});
