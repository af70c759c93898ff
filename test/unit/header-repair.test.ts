// Header syntax the parser would lose: the byte repairs before parsing, and bare address lists.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bareAddressHeaders,
  repairHeaders,
  splitBareName,
} from '../../src/parse/header-repair.js';
import { parseMessage } from '../../src/parse/parse-message.js';

describe('repairHeaders', () => {
  const rows: Array<[string, string, string]> = [
    [
      'an obsolete "From  :" first line is a From header',
      'From  : John <j@x.example>\r\nTo: m@x.example\r\n\r\nhi\r\n',
      'From: John <j@x.example>\r\nTo: m@x.example\r\n\r\nhi\r\n',
    ],
    [
      'a tab before the colon too',
      'From\t: j@x.example\n\nhi\n',
      'From: j@x.example\n\nhi\n',
    ],
    [
      'a stray line inside a folded header is folded in',
      'To    : Mary Smith\r\n__\r\n          <mary@example.net>\r\nSubject: s\r\n\r\nb\r\n',
      'To    : Mary Smith\r\n __\r\n          <mary@example.net>\r\nSubject: s\r\n\r\nb\r\n',
    ],
    [
      "a declared boundary never used: the body's delimiter becomes it (spamscope mail_malformed_3)",
      'Content-Type: multipart/alternative;\r\n\tboundary="--=_Hs"\r\nX-Priority: 1\r\n\r\n----=_Gl\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n----=_1w--\r\n',
      'Content-Type: multipart/alternative;\r\n\tboundary="--=_Gl"\r\nX-Priority: 1\r\n\r\n----=_Gl\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n----=_1w--\r\n',
    ],
    [
      'an unquoted one, after a preamble, with a From  : repair too',
      'From  : j@x.example\nContent-Type: multipart/mixed; boundary=abc\n\nThis is MIME.\n--xyz\ncontent-type: text/plain\n\nhi\n--xyz--\n',
      'From: j@x.example\nContent-Type: multipart/mixed; boundary="xyz"\n\nThis is MIME.\n--xyz\ncontent-type: text/plain\n\nhi\n--xyz--\n',
    ],
  ];
  for (const [title, raw, repaired] of rows) {
    it(title, () => {
      expect(repairHeaders(Buffer.from(raw)).toString()).to.equal(repaired);
    });
  }

  const untouched: Array<[string, string]> = [
    [
      'an mbox separator',
      'From jane@x.example Mon May  2 16:07:05 2005\nFrom: j@x.example\n\nb\n',
    ],
    [
      'ordinary headers',
      'From: j@x.example\r\nTo: a@x.example,\r\n  b@x.example\r\n\r\nb\r\n',
    ],
    [
      'a colon-less line not followed by a folded one',
      'Subject: a\r\nbroken\r\nTo: b@x.example\r\n\r\nb\r\n',
    ],
    [
      'a multipart whose declared boundary is used',
      'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--other\r\nX: y\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n',
    ],
    [
      'a multipart without a delimiter followed by a header line',
      'Content-Type: multipart/mixed; boundary="b"\r\n\r\n-- \r\nsignature\r\n--x\r\n\r\nhi\r\n',
    ],
    [
      'a single part whose text has a delimiter-like line',
      'Content-Type: text/plain\r\n\r\n--x\r\nKey: value\r\n',
    ],
    [
      'colon-less lines of the body',
      'Subject: a\r\n\r\nbody\r\n  indented\r\n',
    ],
  ];
  for (const [title, raw] of untouched) {
    it(`leaves ${title} as it is (the same Buffer)`, () => {
      const bytes = Buffer.from(raw);
      expect(repairHeaders(bytes)).to.equal(bytes);
    });
  }
});

describe('bare address lists', () => {
  it('a header of bare addresses separated by spaces is bare', () => {
    const lines = [
      { key: 'to', line: 'To: tim@x.example concierge@x.example' },
      { key: 'cc', line: 'Cc: "Tim" <tim@x.example>' },
      { key: 'from', line: 'From: tim@x.example' },
      { key: 'reply-to', line: 'Reply-To: a@x.example, b@x.example' },
    ];
    expect([...bareAddressHeaders(lines)]).to.deep.equal(['to']);
  });

  it('a repeated header is bare only when every line is', () => {
    const lines = [
      { key: 'to', line: 'To: a@x.example b@x.example' },
      { key: 'to', line: 'To: <c@x.example>' },
    ];
    expect([...bareAddressHeaders(lines)]).to.deep.equal([]);
  });

  const names: Array<[string, string[]]> = [
    ['concierge@x.example', ['concierge@x.example']],
    ['a@x.example  b@y.example', ['a@x.example', 'b@y.example']],
    ['Concierge desk', []],
    ['desk a@x.example', []],
    ['', []],
  ];
  for (const [name, split] of names) {
    it(`splitBareName(${JSON.stringify(name)})`, () => {
      expect(splitBareName(name)).to.deep.equal(split);
    });
  }
});

describe('parseMessage with broken headers', () => {
  it('repairs the first chunk of a streamed (large) message too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'header-repair-'));
    try {
      const path = join(dir, 'big.eml');
      const body = `${'x'.repeat(76)}\r\n`.repeat(4000); // over 256 KiB: streamed
      writeFileSync(
        path,
        `From  : John <jdoe@x.example>\r\nTo: tim@x.example concierge@x.example\r\nSubject: s\r\n\r\n${body}`,
      );
      const message = await parseMessage(path);
      await message.dispose();
      expect(message.from?.address).to.equal('jdoe@x.example');
      expect(message.to.map(a => a.address)).to.deep.equal([
        'tim@x.example',
        'concierge@x.example',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
