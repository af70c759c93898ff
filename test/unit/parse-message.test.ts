// parseMessage streams attachments to files in the given folder, and leaves none behind on failure.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { BridgeError, PermanentError } from '../../src/errors/bridge-error.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import type { ParsedMessage } from '../../src/parse/parsed-message.js';

const CRLF = '\r\n';

/** base64 in 76-character lines, as a MIME body. */
function mimeBase64(bytes: Buffer): string {
  return (bytes.toString('base64').match(/.{1,76}/g) ?? []).join(CRLF);
}

/** A multipart/mixed message with a text part and the given parts after it. */
function multipart(parts: string[][], extraHeaders: string[] = []): Buffer {
  return Buffer.from(
    [
      'From: Jane <jane@example.net>',
      'To: support@example.com',
      'Subject: parts',
      'Message-ID: <parts@example.net>',
      'MIME-Version: 1.0',
      ...extraHeaders,
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'Body.',
      ...parts.flatMap(part => ['--b', ...part]),
      '--b--',
      '',
    ].join(CRLF),
  );
}

function base64Part(headers: string[], bytes: Buffer): string[] {
  return [
    ...headers,
    'Content-Transfer-Encoding: base64',
    '',
    mimeBase64(bytes),
  ];
}

/** Different bytes of every value, `size` of them. */
function bytesOf(size: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + 3) % 256));
}

/** A message mailparser gives up on: an attachment, then more parts than it allows. */
function tooManyParts(firstSize = 5000): Buffer {
  const parts = [
    base64Part(
      ['Content-Type: application/octet-stream; name="first.bin"'],
      bytesOf(firstSize),
    ),
  ];
  for (let i = 0; i < 1001; i++) {
    parts.push(['Content-Type: text/plain', '', `part ${i}`]);
  }
  return multipart(parts);
}

describe('parseMessage: attachments as files', () => {
  let dir: string;
  const parsed: ParsedMessage[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-parse-'));
  });
  afterEach(async () => {
    for (const message of parsed.splice(0)) await message.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function parse(
    source: Parameters<typeof parseMessage>[0],
    options: Parameters<typeof parseMessage>[1] = { attachmentDir: dir },
  ): Promise<ParsedMessage> {
    const message = await parseMessage(source, options);
    parsed.push(message);
    return message;
  }

  it('writes each decoded attachment to its own file in attachmentDir (an empty one is no attachment)', async () => {
    const big = bytesOf(300_000);
    const message = await parse(
      multipart([
        base64Part(
          [
            'Content-Type: application/pdf; name="report.pdf"',
            'Content-Disposition: attachment; filename="report.pdf"',
          ],
          big,
        ),
        [
          'Content-Type: text/csv',
          'Content-Disposition: attachment;',
          " filename*=UTF-8''r%C3%A9sum%C3%A9.csv",
          '',
          'a,b',
        ],
        base64Part(['Content-Type: image/png'], bytesOf(3)),
        base64Part(
          ['Content-Type: application/octet-stream; name="empty.bin"'],
          Buffer.alloc(0),
        ),
      ]),
    );
    const rows = await Promise.all(
      message.attachments.map(async a => ({
        filename: a.filename,
        contentType: a.contentType,
        size: a.size,
        folder: dirname(a.path),
        bytes: (await readFile(a.path)).toString('hex'),
      })),
    );
    expect(rows).to.deep.equal([
      {
        filename: 'report.pdf',
        contentType: 'application/pdf',
        size: big.length,
        folder: dir,
        bytes: big.toString('hex'),
      },
      {
        filename: 'résumé.csv',
        contentType: 'text/csv',
        size: 3,
        folder: dir,
        bytes: Buffer.from('a,b').toString('hex'),
      },
      {
        filename: 'attachment-3.png',
        contentType: 'image/png',
        size: 3,
        folder: dir,
        bytes: bytesOf(3).toString('hex'),
      },
      // empty.bin: an empty part is no attachment (attachment-cleanup.ts), its file is
      // written all the same and removed with the others
    ]);
    expect(message.text).to.equal('Body.');
    expect(await readdir(dir)).to.have.length(4);
    await message.dispose();
    expect(await readdir(dir)).to.deep.equal([]);
    // a second dispose is harmless
    await message.dispose();
  });

  it('without attachmentDir the files go to os.tmpdir(), and dispose removes them', async () => {
    const message = await parse(
      multipart([base64Part(['Content-Type: image/gif'], bytesOf(10))]),
      {},
    );
    const path = message.attachments[0]!.path;
    expect(dirname(path)).to.equal(tmpdir());
    expect(await readFile(path)).to.deep.equal(bytesOf(10));
    await message.dispose();
    let code: string | undefined;
    await readFile(path).catch((e: NodeJS.ErrnoException) => (code = e.code));
    expect(code).to.equal('ENOENT');
  });

  it('two parses of one message write separate files', async () => {
    const raw = multipart([
      base64Part(['Content-Type: image/gif'], bytesOf(9)),
    ]);
    const one = await parse(raw);
    const two = await parse(raw);
    expect(one.attachments[0]!.path).to.not.equal(two.attachments[0]!.path);
    await one.dispose();
    expect(await readFile(two.attachments[0]!.path)).to.deep.equal(bytesOf(9));
  });

  it('names files <filePrefix or att-><16 random hex digits>-<n>.bin, new digits per parse', async () => {
    const raw = multipart([
      base64Part(['Content-Type: image/gif'], bytesOf(9)),
      base64Part(['Content-Type: image/gif'], bytesOf(8)),
    ]);
    const plain = await parse(raw);
    const named = await parse(raw, {
      attachmentDir: dir,
      filePrefix: 'att-Q1-',
    });
    const again = await parse(raw, {
      attachmentDir: dir,
      filePrefix: 'att-Q1-',
    });
    const names = (message: ParsedMessage) =>
      message.attachments.map(a => basename(a.path ?? ''));
    expect(names(plain)).to.satisfy((all: string[]) =>
      all.every((n, i) =>
        new RegExp(`^att-[0-9a-f]{16}-${i + 1}\\.bin$`).test(n),
      ),
    );
    expect(names(named)).to.satisfy((all: string[]) =>
      all.every((n, i) =>
        new RegExp(`^att-Q1-[0-9a-f]{16}-${i + 1}\\.bin$`).test(n),
      ),
    );
    expect(names(again)[0]).to.not.equal(names(named)[0]);
  });

  it('keeps cid: links in the HTML and the inline image as an attachment', async () => {
    const message = await parse(
      multipart([
        ['Content-Type: text/html', '', '<p>Logo: <img src="cid:logo@x"></p>'],
        base64Part(
          ['Content-Type: image/png', 'Content-ID: <logo@x>'],
          bytesOf(20),
        ),
      ]),
    );
    expect(message.html).to.include('src="cid:logo@x"');
    expect(message.attachments.map(a => a.contentId)).to.deep.equal(['logo@x']);
  });

  it('an attached message marked inline stays an attachment (ignoreEmbedded)', async () => {
    const message = await parse(
      multipart([
        [
          'Content-Type: message/rfc822',
          'Content-Disposition: inline',
          '',
          'Subject: inner',
          '',
          'Inner body.',
        ],
      ]),
    );
    // named after its subject (the contract's "attached message's subject + .eml")
    expect(message.attachments.map(a => a.filename)).to.deep.equal([
      'inner.eml',
    ]);
    expect(message.text).to.equal('Body.');
  });

  describe('attachment names as decoded, made safe', () => {
    /** RFC 2231 continuations of 70 characters: a long name, as a mail client folds it. */
    const continued = (name: string) =>
      (name.match(/.{1,70}/g) ?? []).map(
        (piece, i, all) =>
          ` filename*${i}*=${i === 0 ? "UTF-8''" : ''}${encodeURIComponent(piece)}${i < all.length - 1 ? ';' : ''}`,
      );
    const rows: Array<[title: string, disposition: string[], name: string]> = [
      [
        'a right-to-left override (RFC 2231) removed: the true extension shows',
        [
          "Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEgpj.exe",
        ],
        'invoicegpj.exe',
      ],
      [
        'a right-to-left override in an encoded word removed',
        [
          'Content-Disposition: attachment; filename="=?UTF-8?Q?invoice=E2=80=AEgpj.exe?="',
        ],
        'invoicegpj.exe',
      ],
      [
        'CR/LF from an encoded word removed',
        [
          'Content-Disposition: attachment; filename="=?UTF-8?Q?a=0D=0AContent-Type:_x.txt?="',
        ],
        'aContent-Type: x.txt',
      ],
      [
        'a name of 5,000 characters: 255 bytes, the extension kept',
        [
          'Content-Disposition: attachment;',
          ...continued(`${'é'.repeat(4996)}.pdf`),
        ],
        `${'é'.repeat(125)}.pdf`,
      ],
    ];
    for (const [title, disposition, name] of rows) {
      it(title, async () => {
        const message = await parse(
          multipart([
            base64Part(
              ['Content-Type: application/octet-stream', ...disposition],
              bytesOf(4),
            ),
          ]),
        );
        expect(message.attachments.map(a => a.filename)).to.deep.equal([name]);
      });
    }
  });

  describe('the digest and size of the raw bytes, whatever the source', () => {
    const raw = multipart([
      base64Part(['Content-Type: image/gif'], bytesOf(70_000)),
    ]);
    const digest = createHash('sha256').update(raw).digest('hex');
    const rows: Array<{
      title: string;
      source: (file: string) => string | Buffer | Readable;
    }> = [
      { title: 'a path', source: file => file },
      { title: 'a Buffer', source: () => raw },
      {
        title: 'a stream of small chunks',
        source: () =>
          Readable.from(
            Array.from({ length: Math.ceil(raw.length / 1000) }, (_, i) =>
              raw.subarray(i * 1000, (i + 1) * 1000),
            ),
          ),
      },
    ];
    for (const row of rows) {
      it(row.title, async () => {
        const file = join(dir, 'raw.eml');
        await writeFile(file, raw);
        const message = await parse(row.source(file));
        expect(message.digest).to.equal(digest);
        expect(message.size).to.equal(raw.length);
        expect(await readFile(message.attachments[0]!.path)).to.deep.equal(
          bytesOf(70_000),
        );
      });
    }
  });

  describe('a path source from `start` (a header line before the message), read whole or streamed', () => {
    const HEADER = Buffer.from('{"queueId":"Q1","rcpt":["a@example.com"]}\n');
    // one under the 256 KiB of a single read, one over it (streamed from the file)
    const rows = [
      { title: 'small (one read)', attachment: 70_000 },
      { title: 'large (streamed)', attachment: 400_000 },
    ];
    for (const row of rows) {
      it(`${row.title}: parses as the file without the header, same digest and size`, async () => {
        const raw = multipart([
          base64Part(
            ['Content-Type: image/gif; name="a.gif"'],
            bytesOf(row.attachment),
          ),
        ]);
        const plainFile = join(dir, 'plain.eml');
        const headedFile = join(dir, 'headed.eml');
        await writeFile(plainFile, raw);
        await writeFile(headedFile, Buffer.concat([HEADER, raw]));
        const plain = await parse(plainFile);
        const headed = await parse(headedFile, {
          attachmentDir: dir,
          start: HEADER.length,
        });
        const fromBuffer = await parse(Buffer.concat([HEADER, raw]), {
          attachmentDir: dir,
          start: HEADER.length,
        });
        const digest = createHash('sha256').update(raw).digest('hex');
        for (const message of [plain, headed, fromBuffer]) {
          expect(message.digest).to.equal(digest);
          expect(message.size).to.equal(raw.length);
          expect(message.subject).to.equal('parts');
          expect(message.messageId).to.equal('<parts@example.net>');
          expect(message.text).to.equal('Body.');
          expect(message.attachments.map(a => a.filename)).to.deep.equal([
            'a.gif',
          ]);
          expect(await readFile(message.attachments[0]!.path)).to.deep.equal(
            bytesOf(row.attachment),
          );
        }
      });
    }

    for (const row of rows) {
      it(`${row.title}, followed by other bytes (a journal record): length stops the message there`, async () => {
        const raw = multipart([
          base64Part(
            ['Content-Type: image/gif; name="a.gif"'],
            bytesOf(row.attachment),
          ),
        ]);
        const after = Buffer.from(
          'M NEXT 99 checksum\nSubject: not this one\r\n',
        );
        const bytes = Buffer.concat([HEADER, raw, after]);
        const file = join(dir, 'segment.log');
        await writeFile(file, bytes);
        const options = {
          attachmentDir: dir,
          start: HEADER.length,
          length: raw.length,
        };
        const digest = createHash('sha256').update(raw).digest('hex');
        for (const message of [
          await parse(file, options),
          await parse(bytes, options),
        ]) {
          expect(message.digest).to.equal(digest);
          expect(message.size).to.equal(raw.length);
          expect(message.text).to.equal('Body.');
          expect(await readFile(message.attachments[0]!.path)).to.deep.equal(
            bytesOf(row.attachment),
          );
        }
      });
    }

    it('a start at the end of the file is an empty message of size 0', async () => {
      const file = join(dir, 'header-only.eml');
      await writeFile(file, HEADER);
      const message = await parse(file, {
        attachmentDir: dir,
        start: HEADER.length,
      });
      expect(message.size).to.equal(0);
      expect(message.digest).to.equal(
        createHash('sha256').update(Buffer.alloc(0)).digest('hex'),
      );
      expect(message.attachments).to.deep.equal([]);
    });

    it('start or length with a stream -> TypeError; a negative start or a fractional length -> RangeError', async () => {
      const errors: unknown[] = [];
      await parseMessage(Readable.from([Buffer.from('Subject: x\r\n\r\n')]), {
        start: 3,
      }).catch((err: unknown) => errors.push(err));
      await parseMessage(Buffer.from('Subject: x\r\n\r\n'), {
        start: -1,
      }).catch((err: unknown) => errors.push(err));
      await parseMessage(Readable.from([Buffer.from('Subject: x\r\n\r\n')]), {
        length: 3,
      }).catch((err: unknown) => errors.push(err));
      await parseMessage(Buffer.from('Subject: x\r\n\r\n'), {
        length: 1.5,
      }).catch((err: unknown) => errors.push(err));
      expect(errors.map(e => (e as Error).constructor)).to.deep.equal([
        TypeError,
        RangeError,
        TypeError,
        RangeError,
      ]);
    });
  });

  describe('failures leave no attachment file behind', () => {
    it('unparseable (too many parts after an attachment) -> PermanentError', async () => {
      let error: unknown;
      await parseMessage(tooManyParts(), { attachmentDir: dir }).catch(
        (err: unknown) => (error = err),
      );
      expect(error).to.be.instanceOf(PermanentError);
      // the parser's own words are kept: they become the dead reason
      expect((error as Error).message).to.equal(
        'Message could not be parsed: Max allowed child nodes exceeded',
      );
      expect(await readdir(dir)).to.deep.equal([]);
    });

    for (const row of [
      { title: 'one read', firstSize: 5000 },
      { title: 'streamed', firstSize: 300_000 },
    ]) {
      it(`unparseable from a path (${row.title}) -> PermanentError`, async () => {
        const file = join(dir, 'bad.eml');
        await writeFile(file, tooManyParts(row.firstSize));
        const attachmentDir = join(dir, 'attachments');
        await mkdir(attachmentDir);
        let error: unknown;
        await parseMessage(file, { attachmentDir }).catch(
          (err: unknown) => (error = err),
        );
        expect(error).to.be.instanceOf(PermanentError);
        expect(await readdir(attachmentDir)).to.deep.equal([]);
      });
    }

    it('the attachment folder is missing -> the disk error, not PermanentError', async () => {
      const missing = join(dir, 'no-such-folder');
      let error: NodeJS.ErrnoException | undefined;
      await parseMessage(
        multipart([base64Part(['Content-Type: image/gif'], bytesOf(10))]),
        { attachmentDir: missing },
      ).catch((err: NodeJS.ErrnoException) => (error = err));
      expect(error).to.not.be.instanceOf(BridgeError);
      expect(error?.code).to.equal('ENOENT');
      expect(await readdir(dir)).to.deep.equal([]);
    });

    it('the source fails mid-attachment -> the read error, not PermanentError', async () => {
      const raw = multipart([
        base64Part(['Content-Type: image/gif'], bytesOf(200_000)),
      ]);
      const broken = new Error('disk went away');
      const source = Readable.from(
        (async function* () {
          yield raw.subarray(0, 100_000);
          throw broken;
        })(),
      );
      let error: unknown;
      await parseMessage(source, { attachmentDir: dir }).catch(
        (err: unknown) => (error = err),
      );
      expect(error).to.equal(broken);
      expect(await readdir(dir)).to.deep.equal([]);
    });

    it('a raw file that does not exist -> ENOENT, not PermanentError', async () => {
      let error: NodeJS.ErrnoException | undefined;
      await parseMessage(join(dir, 'gone.eml'), { attachmentDir: dir }).catch(
        (err: NodeJS.ErrnoException) => (error = err),
      );
      expect(error).to.not.be.instanceOf(BridgeError);
      expect(error?.code).to.equal('ENOENT');
    });
  });
});
