// yEnc blocks in a text part: left out, with a note naming the file.
import { expect } from 'chai';
import { withoutYenc } from '../../src/parse/yenc.js';

describe('withoutYenc', () => {
  const rows: Array<[string, string, string]> = [
    [
      'a block becomes a note naming the file',
      'Hi\n=ybegin line=128 size=584 name=testfile.txt \n\u0080\u0081junk\n=yend size=584 crc32=ded29f4f \nBye\n',
      'Hi\n[mailbridge: a yEnc-encoded file ("testfile.txt", 584 bytes) was left out]\nBye\n',
    ],
    [
      'a name with spaces, a multi-part block',
      '=ybegin part=1 line=128 size=9 name=my file.bin\n=ypart begin=1 end=9\nxx\n=yend size=9 part=1\n',
      '[mailbridge: a yEnc-encoded file ("my file.bin", 9 bytes) was left out]\n',
    ],
    [
      'a block without =yend runs to the end',
      'a\n=ybegin line=128 size=3 name=x\nzzz\nzzz',
      'a\n[mailbridge: a yEnc-encoded file ("x", 3 bytes) was left out]',
    ],
    [
      'two blocks',
      '=ybegin size=1 name=a\nq\n=yend\nmid\n=ybegin size=2 name=b\nq\n=yend\n',
      '[mailbridge: a yEnc-encoded file ("a", 1 bytes) was left out]\nmid\n[mailbridge: a yEnc-encoded file ("b", 2 bytes) was left out]\n',
    ],
    [
      'text that only mentions =ybegin mid-line stays',
      'write =ybegin at the start of a line\n',
      'write =ybegin at the start of a line\n',
    ],
    ['no yEnc at all', 'plain text\n', 'plain text\n'],
  ];
  for (const [title, text, expected] of rows) {
    it(title, () => {
      expect(withoutYenc(text)).to.equal(expected);
    });
  }
});
