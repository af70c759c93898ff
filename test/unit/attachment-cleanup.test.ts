// Calendar parts once, attached messages named after their subject: the pure parts, by table.
import { expect } from 'chai';
import {
  withoutEmptyParts,
  withoutExternalBodies,
  isCalendar,
  subjectFilename,
  wantsSubjectName,
} from '../../src/parse/attachment-cleanup.js';
import type { ParsedAttachment } from '../../src/parse/parsed-message.js';

function part(over: Partial<ParsedAttachment>): ParsedAttachment {
  return {
    filename: 'x',
    contentType: 'application/octet-stream',
    path: '/nonexistent',
    size: 1,
    ...over,
  };
}

describe('attachment cleanup', () => {
  describe('subjectFilename', () => {
    const rows: Array<[string | undefined, string | undefined]> = [
      ['Quarterly report', 'Quarterly report.eml'],
      ['Re: invoice 3/2024', 'Re_ invoice 3_2024.eml'],
      ['  many   spaces\r\n folded ', 'many spaces folded.eml'],
      ['ニャーン', 'ニャーン.eml'],
      ['a\u202Egpj.exe', 'agpj.exe.eml'],
      ['', undefined],
      ['   ', undefined],
      ['///', undefined],
      [undefined, undefined],
    ];
    for (const [subject, name] of rows) {
      it(`${JSON.stringify(subject)} -> ${String(name)}`, () => {
        expect(subjectFilename(subject)).to.equal(name);
      });
    }

    it('a long subject is cut to 255 bytes, .eml kept', () => {
      const name = subjectFilename('é'.repeat(300))!;
      expect(Buffer.byteLength(name)).to.be.at.most(255);
      expect(name.endsWith('.eml')).to.equal(true);
    });
  });

  describe('wantsSubjectName', () => {
    const rows: Array<[string, Partial<ParsedAttachment>, boolean]> = [
      [
        'a generated name',
        {
          contentType: 'message/rfc822',
          filename: 'attachment-1.eml',
          generatedName: true,
        },
        true,
      ],
      [
        'a bare extension',
        { contentType: 'message/rfc822', filename: '.eml' },
        true,
      ],
      [
        'message/news',
        { contentType: 'message/news', generatedName: true },
        true,
      ],
      [
        'a name of its own',
        { contentType: 'message/rfc822', filename: 'thanks.eml' },
        false,
      ],
      [
        'not a message',
        { contentType: 'image/png', generatedName: true },
        false,
      ],
    ];
    for (const [title, over, wanted] of rows) {
      it(title, () => {
        expect(wantsSubjectName(part(over))).to.equal(wanted);
      });
    }
  });

  describe('isCalendar', () => {
    const rows: Array<[Partial<ParsedAttachment>, boolean]> = [
      [{ contentType: 'text/calendar' }, true],
      [{ contentType: 'application/ics' }, true],
      [{ contentType: 'text/x-vcalendar' }, true],
      [{ filename: 'meeting.ICS' }, true],
      [{ contentType: 'text/plain', filename: 'notes.txt' }, false],
    ];
    for (const [over, calendar] of rows) {
      it(`${JSON.stringify(over)} -> ${calendar}`, () => {
        expect(isCalendar(part(over))).to.equal(calendar);
      });
    }
  });

  it('withoutExternalBodies drops only message/external-body parts', () => {
    const kept = part({ contentType: 'text/plain' });
    const external = part({ contentType: 'message/external-body', size: 0 });
    expect(withoutExternalBodies([external, kept])).to.deep.equal([kept]);
  });

  describe('withoutEmptyParts', () => {
    const rows: Array<[string, Partial<ParsedAttachment>, boolean]> = [
      [
        'an empty inline image',
        {
          filename: 'empty.gif',
          contentType: 'image/gif',
          size: 0,
          contentId: 'x',
        },
        false,
      ],
      [
        'an empty attached message',
        {
          filename: 'attachment-1.eml',
          contentType: 'message/rfc822',
          size: 0,
          generatedName: true,
        },
        false,
      ],
      ['an empty named file', { filename: 'PGP_Cmts.doc', size: 0 }, false],
      ['a file of one byte', { filename: 'a.bin', size: 1 }, true],
    ];
    for (const [title, over, kept] of rows) {
      it(`${title}: ${kept ? 'kept' : 'left out'}`, () => {
        const attachment = part(over);
        expect(withoutEmptyParts([attachment])).to.deep.equal(
          kept ? [attachment] : [],
        );
      });
    }
  });
});
