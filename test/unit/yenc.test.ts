// yEnc blocks in a text part: left out, with a note naming the file.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMessage } from '../../src/parse/parse-message.js';
import { decodeYencBlocks, withoutYenc } from '../../src/parse/yenc.js';

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

describe('withoutYenc, the files attached', () => {
  it('says the file is attached', () => {
    expect(
      withoutYenc(
        '=ybegin line=128 size=3 name=a.bin\nxyz\n=yend size=3\n',
        true,
      ),
    ).to.equal(
      '[mailbridge: a yEnc-encoded file ("a.bin", 3 bytes) is attached]\n',
    );
  });
});

/** yEnc-encodes bytes the simple way: +42, and = escapes for NUL, LF, CR and =. */
function encode(data: number[]): Buffer {
  const out: number[] = [];
  for (const byte of data) {
    const value = (byte + 42) % 256;
    if ([0x00, 0x0a, 0x0d, 0x3d].includes(value)) {
      out.push(0x3d, (value + 64) % 256);
    } else out.push(value);
  }
  return Buffer.from(out);
}

describe('decodeYencBlocks', () => {
  const all = [...Array(256).keys()];

  it('decodes every byte value, escapes included, over CRLF lines', () => {
    const body = encode(all);
    const raw = Buffer.concat([
      Buffer.from(
        'Subject: x\r\n\r\nhi\r\n=ybegin line=128 size=256 name=all.bin \r\n',
      ),
      body.subarray(0, 100),
      Buffer.from('\r\n'),
      body.subarray(100),
      Buffer.from('\r\n=yend size=256\r\nbye\r\n'),
    ]);
    const [file, ...more] = decodeYencBlocks(raw);
    expect(more).to.have.length(0);
    expect(file?.name).to.equal('all.bin');
    expect([...file!.data]).to.deep.equal(all);
  });

  it('skips =ypart lines and finds every block', () => {
    const raw = Buffer.concat([
      Buffer.from('=ybegin part=1 size=2 name=a\n=ypart begin=1 end=2\n'),
      encode([1, 2]),
      Buffer.from('\n=yend\ntext\n=ybegin size=1 name=b\n'),
      encode([3]),
      Buffer.from('\n=yend\n'),
    ]);
    expect(decodeYencBlocks(raw).map(f => [f.name, [...f.data]])).to.deep.equal(
      [
        ['a', [1, 2]],
        ['b', [3]],
      ],
    );
  });

  it('a block without =yend runs to the end; one not at a line start is no block', () => {
    const raw = Buffer.concat([
      Buffer.from('say =ybegin here\n=ybegin size=2 name=c\n'),
      encode([9, 8]),
    ]);
    expect(decodeYencBlocks(raw).map(f => [f.name, [...f.data]])).to.deep.equal(
      [['c', [9, 8]]],
    );
    expect(decodeYencBlocks(Buffer.from('say =ybegin here\n'))).to.deep.equal(
      [],
    );
  });
});

describe('parseMessage with yEnc', () => {
  it('a streamed (large) message keeps the note, without the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'yenc-'));
    try {
      const path = join(dir, 'big.eml');
      const filler = `${'x'.repeat(76)}\r\n`.repeat(4000); // over 256 KiB: streamed
      writeFileSync(
        path,
        Buffer.concat([
          Buffer.from(
            `From: a@x.example\r\nSubject: s\r\n\r\n${filler}=ybegin line=128 size=3 name=a.bin\r\n`,
          ),
          encode([200, 201, 202]),
          Buffer.from('\r\n=yend size=3\r\n'),
        ]),
      );
      const message = await parseMessage(path);
      await message.dispose();
      expect(message.attachments).to.deep.equal([]);
      expect(message.text).to.include(
        '[mailbridge: a yEnc-encoded file ("a.bin", 3 bytes) was left out]',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Regression (review): the note said "is attached" whenever the decoded text held a yEnc
  // block, though the raw bytes (base64 here) gave no file to attach
  it('a block only the transfer encoding hides: the note says left out, nothing attached', async () => {
    const text = `Hi\r\n=ybegin line=128 size=3 name=a.bin\r\nabc\r\n=yend size=3\r\n`;
    const raw = Buffer.from(
      [
        'From: a@x.example',
        'Subject: s',
        'Content-Type: text/plain; charset=us-ascii',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from(text).toString('base64'),
        '',
      ].join('\r\n'),
    );
    const message = await parseMessage(raw);
    await message.dispose();
    expect(message.attachments).to.deep.equal([]);
    expect(message.text).to.include(
      '[mailbridge: a yEnc-encoded file ("a.bin", 3 bytes) was left out]',
    );
  });
});
