// Lying charset labels: when the bytes win over the label, and when the label stays.
import { expect } from 'chai';
import {
  decodeRawHeader,
  isMultibyteUtf8,
  overrideDecoding,
} from '../../src/parse/charset-choice.js';
import { parseMessage } from '../../src/parse/parse-message.js';

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const bytes = (...values: number[]) => Buffer.from(values);
/** Big5 bytes read as Latin-1 and written out as UTF-8 (double encoding). */
const doubled = (big5: Buffer) => Buffer.from(big5.toString('latin1'), 'utf8');

const BIG5_TOOLS = bytes(0xa4, 0x75, 0xa8, 0xe3); // 工具
const GB2312_HELLO = bytes(0xc4, 0xe3, 0xba, 0xc3); // 你好
const SJIS_A = bytes(0x82, 0xa0); // あ
const KOI8R_PRIVET = bytes(0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4); // Привет
const CP1252_CAFE = bytes(0x63, 0x61, 0x66, 0xe9); // café

describe('overrideDecoding', () => {
  const rows: Array<[string, string, Buffer, string | undefined]> = [
    // [title, label, bytes, the reading that overrides the label (undefined: the label's)]
    ['UTF-8 under GB2312', 'GB2312', utf8('你好！我公司'), '你好！我公司'],
    ['UTF-8 under ISO-8859-1 (a web form)', 'ISO-8859-1', utf8('café'), 'café'],
    [
      'UTF-8 under windows-1252',
      'windows-1252',
      utf8('naïve – ok'),
      'naïve – ok',
    ],
    ['UTF-8 under Shift_JIS', 'Shift_JIS', utf8('あいう'), 'あいう'],
    ['double-encoded Big5 under big5', 'big5', doubled(BIG5_TOOLS), '工具'],
    ['real GB2312', 'GB2312', GB2312_HELLO, undefined],
    ['real Big5', 'big5', BIG5_TOOLS, undefined],
    ['real Shift_JIS', 'Shift_JIS', SJIS_A, undefined],
    ['real KOI8-R', 'KOI8-R', KOI8R_PRIVET, undefined],
    ['real windows-1252', 'windows-1252', CP1252_CAFE, undefined],
    ['ASCII only, whatever the label', 'GB2312', utf8('hello'), undefined],
    [
      'ISO-2022-JP (7-bit escapes)',
      'ISO-2022-JP',
      bytes(0x1b, 0x24, 0x42, 0x24, 0x22, 0x1b, 0x28, 0x42),
      undefined,
    ],
    [
      'a Unicode label is never second-guessed',
      'utf-16le',
      utf8('é'),
      undefined,
    ],
    ['nor UTF-7', 'utf-7', utf8('é'), undefined],
    // Latin-1 letters in UTF-8 under a single-byte label: the common web form, not double encoding
    [
      'Latin-1 letters in UTF-8 under ISO-8859-1',
      'iso-8859-1',
      utf8('äöü'),
      'äöü',
    ],
  ];
  for (const [title, label, raw, expected] of rows) {
    it(title, () => {
      expect(overrideDecoding(label, raw)).to.equal(expected);
    });
  }
});

describe('isMultibyteUtf8', () => {
  const rows: Array<[Buffer, boolean]> = [
    [utf8('é'), true],
    [utf8('plain'), false],
    [CP1252_CAFE, false],
    [bytes(0xc3), false], // cut short
    [GB2312_HELLO, false],
  ];
  for (const [raw, expected] of rows) {
    it(`${raw.toString('hex')} -> ${expected}`, () => {
      expect(isMultibyteUtf8(raw)).to.equal(expected);
    });
  }
});

describe('decodeRawHeader', () => {
  const rows: Array<[string, Buffer, string | undefined, string | undefined]> =
    [
      ['raw Big5 under the message label big5', BIG5_TOOLS, 'big5', '工具'],
      ['double-encoded Big5 under big5', doubled(BIG5_TOOLS), 'big5', '工具'],
      ['raw UTF-8 under GB2312', utf8('你好'), 'GB2312', '你好'],
      ['raw KOI8-R under koi8-r', KOI8R_PRIVET, 'koi8-r', 'Привет'],
      ['no label: the parser reading stays', BIG5_TOOLS, undefined, undefined],
      ['a label TextDecoder does not know', BIG5_TOOLS, 'x-unknown', undefined],
      ['bytes the label cannot decode', bytes(0xff, 0xff), 'big5', undefined],
      ['ASCII', utf8('hello'), 'big5', undefined],
      ['under a UTF-8 label', utf8('你好'), 'utf-8', undefined],
    ];
  for (const [title, raw, label, expected] of rows) {
    it(title, () => {
      expect(decodeRawHeader(raw, label)).to.equal(expected);
    });
  }
});

describe('parseMessage: a raw 8-bit Subject', () => {
  const big5Subject = Buffer.from([0xa4, 0x75, 0xa8, 0xe3, 0xa6, 0x43]); // 工具列

  async function subjectOf(raw: Buffer): Promise<string | undefined> {
    const message = await parseMessage(raw);
    await message.dispose();
    return message.subject;
  }

  it('of a multipart message is read with the charset of its text part', async () => {
    const raw = Buffer.concat([
      Buffer.from('From: a@x.example\r\nSubject: '),
      big5Subject,
      Buffer.from(
        '\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n' +
          '--b\r\nContent-Type: text/plain; charset=big5\r\n\r\n',
      ),
      big5Subject,
      Buffer.from('\r\n--b--\r\n'),
    ]);
    expect(await subjectOf(raw)).to.equal('工具列');
  });

  it('of a single part is read with its Content-Type charset', async () => {
    const raw = Buffer.concat([
      Buffer.from('From: a@x.example\r\nSubject: '),
      big5Subject,
      Buffer.from('\r\nContent-Type: text/plain; charset=big5\r\n\r\nhi\r\n'),
    ]);
    expect(await subjectOf(raw)).to.equal('工具列');
  });

  it('in UTF-8 is kept as the parser read it', async () => {
    const raw = Buffer.from(
      'From: a@x.example\r\nSubject: Grüße 你好\r\nContent-Type: text/plain; charset=big5\r\n\r\nhi\r\n',
    );
    expect(await subjectOf(raw)).to.equal('Grüße 你好');
  });
});
