// Where a text part's disposition is corrected from mailparser's reading of it.
import { expect } from 'chai';
import {
  correctedDisposition,
  type PartHeaders,
} from '../../src/parse/part-disposition.js';

describe('correctedDisposition', () => {
  const rows: Array<
    [string, PartHeaders, 'inline' | 'attachment' | undefined]
  > = [
    [
      'the single HTML part with an invalid disposition: the body',
      { root: true, contentType: 'text/html', disposition: 'invalid' },
      'inline',
    ],
    [
      'the single text part marked attachment: mailparser decides (a file)',
      { root: true, contentType: 'text/plain', disposition: 'attachment' },
      undefined,
    ],
    [
      'a named text part without disposition: a file',
      { contentType: 'text/plain', filename: 'attachment.txt' },
      'attachment',
    ],
    [
      'a named text part marked inline: mailparser decides',
      { contentType: 'text/plain', disposition: 'inline', filename: 'a.txt' },
      undefined,
    ],
    [
      'an unnamed text part without disposition: body text',
      { contentType: 'text/plain' },
      undefined,
    ],
    [
      'a named single-part message: still its body',
      { root: true, contentType: 'text/plain', filename: 'a.txt' },
      undefined,
    ],
    [
      'not a text type',
      { root: true, contentType: 'image/png', disposition: 'invalid' },
      undefined,
    ],
    ['no content type', { root: true, disposition: 'invalid' }, undefined],
  ];
  for (const [title, part, disposition] of rows) {
    it(title, () => {
      expect(correctedDisposition(part)).to.equal(disposition);
    });
  }
});
