// TNEF (winmail.dat): attributes, MAPI properties, attached messages, compressed RTF and the HTML in it.
import { expect } from 'chai';
import { decompressRtf, htmlFromRtf } from '../../src/parse/rtf.js';
import { decodeHtml, decodeTnef, isTnef } from '../../src/parse/tnef.js';
import { distinctFiles, typeOf } from '../../src/parse/tnef-unpack.js';

/** One TNEF attribute: level, id (type in the high word), length, data, checksum. */
function attribute(level: number, id: number, data: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head[0] = level;
  head.writeUInt32LE(id >>> 0, 1);
  head.writeUInt32LE(data.length, 5);
  let sum = 0;
  for (const byte of data) sum = (sum + byte) & 0xffff;
  const tail = Buffer.alloc(2);
  tail.writeUInt16LE(sum);
  return Buffer.concat([head, data, tail]);
}

function tnef(...attributes: Buffer[]): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32LE(0x223e9f78);
  head.writeUInt16LE(0x1234, 4);
  return Buffer.concat([head, ...attributes]);
}

const pad = (b: Buffer) =>
  Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);

/** A MAPI property list of variable-length values: [type, id, bytes]. */
function properties(...props: Array<[number, number, Buffer]>): Buffer {
  const parts = [u32(props.length)];
  for (const [type, id, bytes] of props) {
    const tag = Buffer.alloc(4);
    tag.writeUInt16LE(type, 0);
    tag.writeUInt16LE(id, 2);
    parts.push(tag, u32(1), u32(bytes.length), pad(bytes));
  }
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

const unicode = (text: string) => Buffer.from(`${text}\0`, 'utf16le');
const REND = attribute(2, 0x00069002, Buffer.alloc(14));

describe('TNEF', () => {
  it('recognizes the signature', () => {
    expect(isTnef(tnef())).to.equal(true);
    expect(isTnef(Buffer.from('PK\x03\x04zip'))).to.equal(false);
    expect(() => decodeTnef(Buffer.from('not tnef'))).to.throw(RangeError);
  });

  it('gives each attachment its long file name, type and bytes', () => {
    const body = tnef(
      attribute(1, 0x0001800c, Buffer.from('the text body\0', 'latin1')),
      REND,
      attribute(2, 0x00018010, Buffer.from('REPORT~1.PDF\0', 'latin1')),
      attribute(2, 0x0006800f, Buffer.from('%PDF-1.4')),
      attribute(
        2,
        0x00069005,
        properties(
          [0x001f, 0x3707, unicode('Quarterly report.pdf')],
          [0x001e, 0x370e, Buffer.from('application/pdf\0')],
        ),
      ),
      REND,
      attribute(2, 0x00018010, Buffer.from('a.txt\0', 'latin1')),
      attribute(2, 0x0006800f, Buffer.from('hello')),
    );
    const content = decodeTnef(body);
    expect(content.text).to.equal('the text body');
    expect(
      content.files.map(f => [f.name, f.contentType, f.data.toString()]),
    ).to.deep.equal([
      ['Quarterly report.pdf', 'application/pdf', '%PDF-1.4'],
      ['a.txt', undefined, 'hello'],
    ]);
  });

  it('an attached message (a TNEF stream in PR_ATTACH_DATA_OBJ): its body and files', () => {
    const inner = tnef(
      attribute(
        1,
        0x00069003,
        properties([0x0102, 0x1013, Buffer.from('<p>inner</p>')]),
      ),
      REND,
      attribute(2, 0x00018010, Buffer.from('x.bin\0')),
      attribute(2, 0x0006800f, Buffer.from([1, 2, 3])),
    );
    const outer = tnef(
      REND,
      attribute(2, 0x0006800f, Buffer.from('not supported by this system')),
      attribute(
        2,
        0x00069005,
        properties(
          [0x001f, 0x3001, unicode('Minutes')],
          [0x000d, 0x3701, Buffer.concat([Buffer.alloc(16), inner])],
        ),
      ),
    );
    const files = decodeTnef(outer).files;
    expect(files.map(f => [f.name, f.data.length])).to.deep.equal([
      ['Minutes.html', 12],
      ['x.bin', 3],
    ]);
  });

  it('the HTML body (PR_HTML) in the charset its <meta> names', () => {
    const html = Buffer.concat([
      Buffer.from('<meta charset="koi8-r"><p>'),
      Buffer.from([0xdb, 0xcf, 0xd3, 0xd4, 0xc9, 0xca]),
    ]);
    const content = decodeTnef(
      tnef(attribute(1, 0x00069003, properties([0x0102, 0x1013, html]))),
    );
    expect(content.html).to.include('шостий');
    expect(decodeHtml(Buffer.from('<p>é</p>'))).to.equal('<p>é</p>');
  });

  it('a stream cut short throws', () => {
    const whole = tnef(REND, attribute(2, 0x0006800f, Buffer.from('abcdef')));
    expect(() => decodeTnef(whole.subarray(0, whole.length - 4))).to.throw(
      RangeError,
    );
  });

  it('decompresses RTF ([MS-OXRTFCP] example)', () => {
    const compressed = Buffer.from(
      '2d0000002b0000004c5a4675f1c5c7a703000a0072637067313235423'.concat(
        '20af32068656c090020627705b06c647d0a800fa0',
      ),
      'hex',
    );
    expect(decompressRtf(compressed).toString('latin1')).to.equal(
      '{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n',
    );
  });

  it('an uncompressed RTF value (MELA) is given as it is', () => {
    const rtf = Buffer.from('{\\rtf1 x}');
    const value = Buffer.concat([
      u32(rtf.length + 12),
      u32(rtf.length),
      Buffer.from('MELA'),
      u32(0),
      rtf,
    ]);
    expect(decompressRtf(value).toString()).to.equal('{\\rtf1 x}');
  });

  describe('htmlFromRtf', () => {
    const rows: Array<[string, string, string | undefined]> = [
      ['an RTF document of its own', '{\\rtf1\\ansi hello}', undefined],
      [
        'encapsulated HTML: tags and text kept, \\htmlrtf parts dropped',
        '{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 {\\fonttbl{\\f0 Arial;}}' +
          "{\\*\\htmltag64 <p>}\\htmlrtf {\\b\\htmlrtf0 Hi \\'e9t\\'e9\\htmlrtf }\\htmlrtf0 " +
          '{\\*\\htmltag72 </p>}\\par}',
        '<p>Hi été</p>\r\n',
      ],
      [
        'unicode escapes skip their fallback',
        '{\\rtf1\\ansi\\fromhtml1 {\\*\\htmltag <b>}\\u1096?\\u1086?{\\*\\htmltag </b>}}',
        '<b>шо</b>',
      ],
    ];
    for (const [title, rtf, html] of rows) {
      it(title, () => {
        expect(htmlFromRtf(Buffer.from(rtf, 'latin1'))).to.equal(html);
      });
    }
  });

  describe('typeOf', () => {
    const rows: Array<[string | undefined, string | undefined, string]> = [
      ['Application/PDF', 'x', 'application/pdf'],
      [undefined, 'photo.JPG', 'image/jpeg'],
      [undefined, 'photo.jpeg', 'image/jpeg'],
      ['not a type', 'a.txt', 'text/plain'],
      [undefined, 'noext', 'application/octet-stream'],
    ];
    for (const [recorded, name, type] of rows) {
      it(`${String(recorded)}, ${String(name)} -> ${type}`, () => {
        expect(typeOf(recorded, name)).to.equal(type);
      });
    }
  });
});

describe('TNEF: distinctFiles', () => {
  const jpeg = Buffer.from([0xff, 0xd8, 1, 2]);
  const rows: Array<[string, Array<{ name?: string; data: Buffer }>, number]> =
    [
      [
        'the same name and bytes twice (mimekit-rich-text): once',
        [
          { name: 'k.jpg', data: jpeg },
          { name: 'k.jpg', data: Buffer.from(jpeg) },
        ],
        1,
      ],
      [
        'the same name, other bytes: both',
        [
          { name: 'k.jpg', data: jpeg },
          { name: 'k.jpg', data: Buffer.from([1]) },
        ],
        2,
      ],
      [
        'the same bytes, other names: both',
        [
          { name: 'a.jpg', data: jpeg },
          { name: 'b.jpg', data: jpeg },
        ],
        2,
      ],
      [
        'two unnamed files with the same bytes: once',
        [{ data: jpeg }, { data: jpeg }],
        1,
      ],
    ];
  for (const [title, files, count] of rows) {
    it(title, () => {
      const kept = distinctFiles(files);
      expect(kept).to.have.length(count);
      expect(kept[0]).to.equal(files[0]);
    });
  }
});
