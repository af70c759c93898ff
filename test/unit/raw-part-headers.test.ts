// What a part's raw header lines say that the parser reads wrongly: by table.
import { expect } from 'chai';
import {
  calendarInHeader,
  invalidEscapeName,
  type RawHeaderLine,
} from '../../src/parse/raw-part-headers.js';

/** Raw lines as the splitter keeps them: key lower case, the line as written (latin1). */
function lines(...raw: string[]): RawHeaderLine[] {
  return raw.map(line => ({
    key: line.slice(0, line.indexOf(':')).toLowerCase(),
    line,
  }));
}

describe('raw part headers', () => {
  describe('invalidEscapeName', () => {
    const rows: Array<[string, RawHeaderLine[], string | undefined]> = [
      [
        'James 3901: an invalid escape keeps its % (not =)',
        lines(
          'Content-Disposition: attachment;\r\n filename*=utf-8\'\'4%P001!.DOC;\r\n filename="4%P001!.DOC"',
        ),
        '4%P001!.DOC',
      ],
      [
        'valid escapes around an invalid one are decoded',
        lines(
          "Content-Disposition: attachment; filename*=UTF-8''%C3%A9t%C3%A9 100%.txt",
        ),
        'été 100%.txt',
      ],
      [
        'a % at the very end',
        lines("Content-Disposition: attachment; filename*=utf-8''rate-5%"),
        'rate-5%',
      ],
      [
        'continuations joined first',
        lines(
          "Content-Disposition: attachment;\r\n filename*0*=utf-8''50%;\r\n filename*1*=off.pdf",
        ),
        '50%off.pdf',
      ],
      [
        'latin1 charset',
        lines(
          "Content-Disposition: attachment; filename*=iso-8859-1''caf%E9 %zz.txt",
        ),
        'café %zz.txt',
      ],
      [
        "Content-Type's name*= when there is no disposition",
        lines("Content-Type: application/msword; name*=utf-8''4%P001!.DOC"),
        '4%P001!.DOC',
      ],
      [
        'only valid escapes: the parser decides',
        lines("Content-Disposition: attachment; filename*=utf-8''a%20b.txt"),
        undefined,
      ],
      [
        'no extended value: the parser decides',
        lines('Content-Disposition: attachment; filename="4%P001!.DOC"'),
        undefined,
      ],
      ['no header at all', [], undefined],
    ];
    for (const [title, raw, name] of rows) {
      it(title, () => {
        expect(invalidEscapeName(raw)).to.equal(name);
      });
    }
  });

  describe('calendarInHeader', () => {
    it('the VCALENDAR lines before the real header are the calendar, folds kept', () => {
      const calendar = calendarInHeader(
        lines(
          'BEGIN:VCALENDAR',
          'UID:abc\r\n def',
          'LOCATION:T\xc3\xa9l\xc3\xa9phone',
          'END:VCALENDAR',
          'Content-type: text/calendar; method=REPLY; charset=UTF-8',
        ),
      );
      expect(calendar?.toString('utf8')).to.equal(
        'BEGIN:VCALENDAR\r\nUID:abc\r\n def\r\nLOCATION:Téléphone\r\nEND:VCALENDAR\r\n',
      );
    });

    const none: Array<[string, RawHeaderLine[]]> = [
      ['an ordinary header', lines('Content-Type: text/calendar')],
      ['no END:VCALENDAR', lines('BEGIN:VCALENDAR', 'VERSION:2.0')],
      [
        'BEGIN:VCALENDAR not first',
        lines(
          'Content-Type: text/calendar',
          'BEGIN:VCALENDAR',
          'END:VCALENDAR',
        ),
      ],
      ['no lines', []],
    ];
    for (const [title, raw] of none) {
      it(`${title} -> undefined`, () => {
        expect(calendarInHeader(raw)).to.equal(undefined);
      });
    }
  });
});
