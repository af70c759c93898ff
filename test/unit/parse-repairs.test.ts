// parseMessage on messages the parser alone reads wrongly (REVIEW.md of the corpus goldens).
import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMessage } from '../../src/parse/parse-message.js';
import type { ParsedMessage } from '../../src/parse/parsed-message.js';
import { hasContent } from '../../src/parse/unreadable.js';

const CRLF = '\r\n';

describe('parseMessage: parts repaired', () => {
  let dir: string;
  const parsed: ParsedMessage[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-repairs-'));
  });
  afterEach(async () => {
    for (const message of parsed.splice(0)) await message.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function parse(lines: string[]): Promise<ParsedMessage> {
    const message = await parseMessage(
      Buffer.from(lines.join(CRLF), 'latin1'),
      {
        attachmentDir: dir,
      },
    );
    parsed.push(message);
    return message;
  }

  const head = [
    'From: Jane <jane@example.net>',
    'To: support@example.com',
    'Subject: repairs',
    'MIME-Version: 1.0',
  ];

  it('flowed, DelSp=yes, one QP space between words at a soft break: the space stays', async () => {
    const message = await parse([
      ...head,
      'Content-Type: text/plain; format=flowed; delsp=yes; charset="iso-8859-1"',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'but now there i=',
      's=20',
      'a "You do not" at the bottom of the=',
      '=20',
      'record',
      '',
    ]);
    expect(message.text).to.equal(
      'but now there is a "You do not" at the bottom of the record',
    );
  });

  it('flowed, DelSp=yes, spaces doubled by the sender: RFC 3676 as written', async () => {
    const message = await parse([
      ...head,
      'Content-Type: text/plain; format=flowed; delsp=yes',
      '',
      'there is  ',
      'a long wo ',
      'rd',
      '',
    ]);
    expect(message.text).to.equal('there is a long word');
  });

  it('a flowed DelSp=yes text file (an attachment) keeps its bytes', async () => {
    const message = await parse([
      ...head,
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'Body.',
      '--b',
      'Content-Type: text/plain; format=flowed; delsp=yes',
      'Content-Disposition: attachment; filename="notes.txt"',
      '',
      'there is ',
      'a word',
      '--b--',
      '',
    ]);
    const bytes = await readFile(message.attachments[0]!.path, 'latin1');
    expect(bytes).to.equal('there is \r\na word');
  });

  it('a calendar written where the part header belongs is the part body (James "ICS in header")', async () => {
    const message = await parse([
      ...head,
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'BEGIN:VCALENDAR',
      'METHOD:REPLY',
      'SUMMARY:Point',
      'END:VCALENDAR',
      'Content-type: text/calendar; method=REPLY; charset=UTF-8',
      'Content-Disposition: attachment',
      '',
      '',
      '--b--',
      '',
    ]);
    expect(message.attachments.map(a => [a.filename, a.size])).to.deep.equal([
      ['invite.ics', 61],
    ]);
    expect(await readFile(message.attachments[0]!.path, 'utf8')).to.equal(
      'BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nSUMMARY:Point\r\nEND:VCALENDAR\r\n',
    );
  });

  it('RFC 2231 filename with an invalid %-escape keeps the % (James 3901)', async () => {
    const message = await parse([
      ...head,
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'See 4%P001!.DOC',
      '--b',
      'Content-Type: application/msword',
      'Content-Disposition: attachment;',
      "        filename*=utf-8''4%P001!.DOC;",
      '        filename="4%P001!.DOC"',
      '',
      'doc',
      '--b--',
      '',
    ]);
    expect(message.attachments.map(a => a.filename)).to.deep.equal([
      '4%P001!.DOC',
    ]);
  });

  it('an empty part is no attachment (a 0-byte file would open to nothing)', async () => {
    const message = await parse([
      ...head,
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'Body.',
      '--b',
      'Content-Type: image/gif; name="empty.gif"',
      'Content-Transfer-Encoding: base64',
      '',
      '',
      '--b',
      'Content-Type: application/pdf; name="a.pdf"',
      '',
      '%PDF',
      '--b--',
      '',
    ]);
    expect(message.attachments.map(a => a.filename)).to.deep.equal(['a.pdf']);
  });

  describe('a body part without a charset label', () => {
    const rows: Array<[title: string, body: string, text: string]> = [
      [
        '8-bit Latin bytes: read as windows-1252',
        'informaci\xf3n \x93x\x94',
        'información “x”',
      ],
      ['valid UTF-8: read as UTF-8', 'informaci\xc3\xb3n', 'información'],
      ['7-bit: as it is', 'plain', 'plain'],
    ];
    for (const [title, body, text] of rows) {
      it(title, async () => {
        const message = await parse([
          ...head,
          'Content-Type: text/plain',
          '',
          body,
        ]);
        expect(message.text).to.equal(text);
      });
    }

    it('a text file without a label keeps its bytes', async () => {
      const message = await parse([
        ...head,
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Body.',
        '--b',
        'Content-Type: text/csv',
        'Content-Disposition: attachment; filename="a.csv"',
        '',
        'caf\xe9',
        '--b--',
        '',
      ]);
      const bytes = await readFile(message.attachments[0]!.path);
      expect(bytes.toString('latin1')).to.equal('caf\xe9');
    });
  });

  describe('a multipart of which no part could be read', () => {
    it('a broken delimiter (flanker mailformed-headers): a note, the raw message attached', async () => {
      const lines = [
        ...head,
        'Content-Type: multipart/alternative; boundary="--faf__fawf"',
        '',
        '----fa**f__fawf',
        'Content-Type: text/html;',
        '',
        'Hello',
        '',
        '----faf__fawf--',
        '',
      ];
      const message = await parse(lines);
      expect(message.text).to.equal(
        '[mailbridge: no part of this message could be read (its MIME structure is broken); it is attached as it came: original.eml]',
      );
      expect(
        message.attachments.map(a => [a.filename, a.contentType]),
      ).to.deep.equal([['original.eml', 'message/rfc822']]);
      expect(await readFile(message.attachments[0]!.path, 'latin1')).to.equal(
        lines.join(CRLF),
      );
    });

    it('headers only, or only a closing delimiter: empty, nothing attached (the mapper says so)', async () => {
      for (const body of [[], ['--b--', '']]) {
        const message = await parse([
          ...head,
          'Content-Type: multipart/mixed; boundary="b"',
          '',
          ...body,
        ]);
        expect(message.attachments).to.deep.equal([]);
        expect(message.text ?? '').to.equal('');
      }
    });

    const rows: Array<[string, string, boolean]> = [
      ['headers only', 'Subject: a\r\n\r\n', false],
      [
        'blank lines and delimiters',
        'Subject: a\r\n\r\n\r\n--b\r\n  \r\n--b--\r\n',
        false,
      ],
      ['no header end at all', 'Subject: a\r\n', false],
      ['a line of text', 'Subject: a\n\n--x\nHello\n', true],
    ];
    for (const [title, raw, content] of rows) {
      it(`hasContent: ${title} -> ${content}`, () => {
        expect(hasContent(Buffer.from(raw))).to.equal(content);
      });
    }
  });

  describe('an attached message named only .eml', () => {
    const rows: Array<[title: string, headers: string[], name: string]> = [
      [
        'with a Subject: <subject>.eml',
        ['From: Bob <b@x.example>', 'Subject: Invoice 7'],
        'Invoice 7.eml',
      ],
      [
        'without one (deltachat attached-eml): named after its sender',
        ['From: adb <b@x.example>'],
        'Message from adb.eml',
      ],
      [
        'a sender without a name: the address',
        ['From: b@x.example'],
        'Message from b@x.example.eml',
      ],
      ['neither: generated', ['X-Other: 1'], 'attachment-1.eml'],
    ];
    for (const [title, headers, name] of rows) {
      it(title, async () => {
        const message = await parse([
          ...head,
          'Content-Type: multipart/mixed; boundary="b"',
          '',
          '--b',
          'Content-Type: text/plain',
          '',
          'See the attached message.',
          '--b',
          'Content-Type: message/rfc822; name=.eml',
          'Content-Disposition: attachment; filename=.eml',
          '',
          ...headers,
          '',
          'inner body',
          '--b--',
          '',
        ]);
        expect(message.attachments.map(a => a.filename)).to.deep.equal([name]);
      });
    }
  });
});
