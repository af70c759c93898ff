// Every real-world message of test/fixtures/corpus goes through parse and map into a sound API body.
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';
import { buildPayloads } from '../../src/pipeline/build-payloads.js';
import { payloadToString } from '../../src/api/payload-stream.js';
import type { Envelope } from '../../src/mail/envelope.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import { StructureCheck } from '../../src/mail/structure.js';

const CORPUS = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

/** Every .eml below `dir`, as absolute paths. */
function emlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return emlFiles(path);
    return entry.name.endsWith('.eml') ? [path] : [];
  });
}

/** The corpus files, relative to the corpus (`category/source-name.eml`), sorted. */
const FILES = emlFiles(CORPUS)
  .map(path => relative(CORPUS, path))
  .sort();

/** config/default.yaml (+ test.yaml) with one catch-all route. */
const CONFIG: Config = loadConfig({
  env: { NODE_ENV: 'test' },
  overrides: { routes: [{ match: '*' }] },
});

const ENVELOPE: Envelope = {
  id: 'corpus',
  mailFrom: 'sender@example.net',
  rcptTo: ['support@example.com'],
  receivedAt: '2026-01-01T00:00:00.000Z',
};

/** The one body (as posted) a corpus file gives for the catch-all route. */
async function bodyOf(
  file: string | Buffer,
  config: Pick<Config, 'routes' | 'mapping'> = CONFIG,
): Promise<ApiPayload<string>> {
  const source = typeof file === 'string' ? join(CORPUS, file) : file;
  const message = await parseMessage(source);
  try {
    const bodies = buildPayloads(message, ENVELOPE, config);
    expect(bodies).to.have.length(1);
    const json = await payloadToString(bodies[0]!.payload);
    return JSON.parse(json) as ApiPayload<string>;
  } finally {
    await message.dispose();
  }
}

/** Paths (like `attachments[0].name`) of every empty string anywhere in `value`. */
function emptyStrings(value: unknown, path = 'body'): string[] {
  if (value === '') return [path];
  if (Array.isArray(value)) {
    return value.flatMap((item, i) => emptyStrings(item, `${path}[${i}]`));
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) =>
      emptyStrings(item, `${path}.${key}`),
    );
  }
  return [];
}

const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

describe('corpus: real-world messages', () => {
  it('holds the 193 messages listed in MANIFEST.md', () => {
    const manifest = readFileSync(join(CORPUS, 'MANIFEST.md'), 'utf8');
    const listed = [...manifest.matchAll(/^\| `([^`]+\.eml)` \|/gm)]
      .map(m => m[1])
      .sort();
    expect(FILES).to.have.length(193);
    expect(FILES).to.deep.equal(listed);
  });

  describe('each file parses and maps into a sound body', () => {
    for (const file of FILES) {
      it(file, async () => {
        const body = await bodyOf(file);

        expect(JSON.parse(JSON.stringify(body))).to.deep.equal(body);
        expect(body.ext_msg_id).to.match(/^<[^<>\s]+>$/);
        // Zero-byte parts (8 corpus files, e.g. empty.gif in html/mimekit-body.5.eml) give
        // `file: ''`, the base64 of nothing; every other value must be non-empty.
        const empty = emptyStrings(body).filter(
          path => !/^body\.attachments\[\d+\]\.file$/.test(path),
        );
        expect(empty, 'empty values').to.deep.equal([]);
        for (const key of ['from', 'to', 'cc', 'subject', 'content'] as const) {
          if (key in body) expect(body[key], key).to.be.a('string');
        }
        if (body.reply_to_ext_msg_id !== undefined) {
          expect(body.reply_to_ext_msg_id).to.match(/^<[^<>\s]+>$/);
        }
        for (const attachment of body.attachments ?? []) {
          expect(attachment.name).to.be.a('string').and.not.equal('');
          expect(attachment.file, attachment.name).to.match(BASE64);
        }
        if (body.content !== undefined) {
          expect(body.content.toLowerCase()).to.not.include('<script');
        }
      });
    }
  });

  it('none is refused by the MIME structure check of DATA (whole, or 1 KiB at a time)', () => {
    const refused: string[] = [];
    for (const file of FILES) {
      const raw = readFileSync(join(CORPUS, file));
      for (const size of [raw.length, 1024]) {
        const check = new StructureCheck();
        for (let i = 0; i < raw.length; i += size) {
          check.update(raw.subarray(i, i + size));
        }
        const fault = check.end();
        if (fault) refused.push(`${file} (${size}): ${fault.text}`);
      }
    }
    expect(refused).to.deep.equal([]);
  });

  describe('targeted expectations from MANIFEST.md', () => {
    it('a message without Message-ID gets a generated id, stable across parses', async () => {
      const file = 'plain/mimekit-issue1130.eml';
      const first = await bodyOf(file);
      const again = await bodyOf(file);
      const fromBytes = await bodyOf(readFileSync(join(CORPUS, file)));
      expect(first.ext_msg_id).to.match(
        /^<[0-9a-f]{40}@mailbridge\.generated>$/,
      );
      expect(again.ext_msg_id).to.equal(first.ext_msg_id);
      expect(fromBytes.ext_msg_id).to.equal(first.ext_msg_id);
      // another message without Message-ID gets another id
      const other = await bodyOf('threading/talon-outlook.eml');
      expect(other.ext_msg_id).to.match(/@mailbridge\.generated>$/);
      expect(other.ext_msg_id).to.not.equal(first.ext_msg_id);
    });

    const ids: Array<[string, string, string | undefined]> = [
      // [file, ext_msg_id, reply_to_ext_msg_id]
      [
        'threading/mikelmail-raw_email_reply.eml',
        '<473FFE27.20003@xxx.org>',
        '<348F04F142D69C21-291E56D292BC@xxxx.net>',
      ],
      [
        'threading/talon-yahoo.eml',
        '<1333374330.68772.YahooMailNeo@web114411.mail.gq1.yahoo.com>',
        '<1333374262.7063.15.camel@mg5>',
      ],
      // no In-Reply-To: the last References id is the parent
      [
        'threading/flanker-from-encoding.eml',
        '<33C7E4E1.2A12445E@blank.pages.de>',
        '<Pine.BSF.3.95q.970712135859.28530B-100000@valis.worldgate.com>',
      ],
      // In-Reply-To present but empty, no References
      [
        'headers-edge/mikelmail-empty_in_reply_to.eml',
        '<F194F88AF3E341A6B2B135CC17912811@articondell>',
        undefined,
      ],
      // subject-only threading: no reply id
      [
        'threading/talon-gmail.eml',
        '<CAKsfaBW4hj0Gek6TwbR3erng4P1y0CZzJ0d=pXtCNnYnbe7PLg@mail.gmail.com>',
        undefined,
      ],
      // Message-ID without angle brackets gets them
      [
        'headers-edge/mikelmail-mix_caps_content_type.eml',
        '<201002191008.30117.foo.bar@company.com>',
        undefined,
      ],
      // Message-ID value folded onto the next line
      [
        'calendar/deltachat-calendar-alternative.eml',
        '<DU2PR10MB7741CB7551F025C98CE1B0C0EE28A@DU2PR10MB7741.EURPRD10.PROD.OUTLOOK.COM>',
        undefined,
      ],
    ];
    for (const [file, extMsgId, replyTo] of ids) {
      it(`ids of ${file}`, async () => {
        const body = await bodyOf(file);
        expect(body.ext_msg_id).to.equal(extMsgId);
        expect(body.reply_to_ext_msg_id).to.equal(replyTo);
      });
    }

    it('a reply without its own Message-ID keeps its In-Reply-To', async () => {
      const body = await bodyOf('threading/james-multipart_complex.eml');
      expect(body.ext_msg_id).to.match(/@mailbridge\.generated>$/);
      expect(body.reply_to_ext_msg_id).to.equal(
        '<d5c6f1d6-96e7-8172-9fe6-41fa6c9bd6ec@linagora.com>',
      );
    });

    const names: Array<[string, string, string[]]> = [
      // [file, what is notable, attachment names (NFC)]
      [
        'attachments/deltachat-attach_filename_apostrophed_cont.eml',
        'RFC 2231 continuation',
        ['Maßnahmen März 2022.html'],
      ],
      [
        'attachments/deltachat-pdf_filename_continuation.eml',
        'RFC 2231 continuation, NFD umlauts',
        ['test pdf äöüß.pdf'],
      ],
      [
        'attachments/james-messageWithNonASCIIFilenameAttachment.eml',
        'RFC 2231 UTF-8',
        ['ديناصور.odt'],
      ],
      [
        'attachments/mikelmail-attachment_with_quoted_filename.eml',
        'RFC 2231 ISO-8859-1',
        ['Eelanalüüsi päring.jpg'],
      ],
      [
        'attachments/mikelmail-japanese_attachment_long_name.eml',
        'RFC 2231 continuation, Japanese',
        ['かきくけこかきくけこかきくけこかきくけこかきくけこ.txt'],
      ],
      [
        'attachments/mikelmail-attachment_with_base64_encoded_name.eml',
        'RFC 2047 unquoted encoded-word',
        ['This is a test.pdf'],
      ],
      [
        'attachments/deltachat-attach_filename_encoded_words_bad_delimiter.eml',
        'RFC 2047 glued to plain text',
        ['foo.bar'],
      ],
      [
        'attachments/james-attachments-filename-in-content-type.eml',
        'name only in Content-Type',
        ['1.txt', '2.txt'],
      ],
      [
        'attachments/mikelmail-attachment_content_location.eml',
        'nameless image: the name of its Content-Location',
        ['Photo25.jpg'],
      ],
      [
        'threading/mimekit-epilogue.eml',
        'an empty application/postscript part: not posted (no 0-byte file)',
        [],
      ],
    ];
    for (const [file, notable, expected] of names) {
      it(`attachment names: ${notable} (${file})`, async () => {
        const body = await bodyOf(file);
        const actual = (body.attachments ?? []).map(a => a.name);
        expect(actual.map(n => n.normalize('NFC'))).to.deep.equal(expected);
        for (const name of actual) expect(name).to.not.include('=?');
      });
    }

    it('RFC 2231 and RFC 2047 names given together: a decoded one wins', async () => {
      const body = await bodyOf(
        'attachments/deltachat-attach_filename_combined.eml',
      );
      expect(body.attachments?.map(a => a.name)).to.have.length(1);
      expect(body.attachments?.[0]?.name).to.be.oneOf([
        'Maßnahmen Okt. 2020.html',
        'Maßnahmen Okt. 2020.ignored.html',
      ]);
    });

    it('an attachment carries its decoded bytes (iPhone JPEG)', async () => {
      const body = await bodyOf('attachments/flanker-iphone.eml');
      expect(body.attachments?.map(a => a.name)).to.deep.equal(['photo.JPG']);
      const bytes = Buffer.from(body.attachments?.[0]?.file ?? '', 'base64');
      expect([...bytes.subarray(0, 3)]).to.deep.equal([0xff, 0xd8, 0xff]);
    });

    const subjects: Array<[string, string, string]> = [
      // [file, charset, decoded subject]
      [
        'charsets/mimekit-japanese.eml',
        'ISO-2022-JP split over encoded-words',
        '日本語メールテスト (testing Japanese emails)',
      ],
      [
        'bounces-dsn/sisimai-lhost-office365-04.eml',
        'ISO-2022-JP',
        'Undeliverable: ニャーン',
      ],
      [
        'charsets/mikelmail-raw_email.eml',
        'EUC-KR Q-encoded',
        'NOTE: 한국말로 하는 것',
      ],
      [
        'charsets/spamscope-mail_test_12.eml',
        'GB2312 B-encoded',
        '代开各地增值税发票',
      ],
      [
        'attachments/mikelmail-attachment_with_quoted_filename.eml',
        'ISO-8859-1 Q-encoded',
        'Eelanalüüsi päring',
      ],
      [
        'charsets/flanker-bilingual-simple.eml',
        'UTF-8 base64',
        'Simple text. How are you? Как ты поживаешь?',
      ],
      [
        'attachments/mikelmail-attachment_pdf.eml',
        'raw 8-bit UTF-8',
        'Another PDF with 🎉 Unicode chars in it 🍿',
      ],
    ];
    for (const [file, charset, subject] of subjects) {
      it(`decoded subject: ${charset} (${file})`, async () => {
        const body = await bodyOf(file);
        expect(body.subject).to.equal(subject);
      });
    }

    it('decoded subject: folded ISO-2022-JP with a blank continuation line', async () => {
      const body = await bodyOf('headers-edge/mikelmail-example14.eml');
      expect(body.subject).to.match(/^Re: TEST\s+テストテスト$/);
    });

    const contents: Array<[string, string, string]> = [
      // [file, charset, text the content must include]
      [
        'charsets/mikelmail-japanese_iso_2022.eml',
        'ISO-2022-JP',
        'すみません。',
      ],
      ['charsets/mikelmail-japanese_shift_jis.eml', 'Shift_JIS', 'あいうえお'],
      ['charsets/mikelmail-ks_c_5601-1987.eml', 'ks_c_5601-1987', '스티해'],
      ['tnef/mimekit-ukr.eml', 'KOI8-R', 'шостий'],
      ['charsets/deltachat-text_plain_iso88591.eml', 'ISO-8859-1', 'äöüßÄÖÜ'],
      ['charsets/deltachat-cp1252-html.eml', 'windows-1252', 'ä ö ü ß'],
      ['charsets/flanker-8bitmime.eml', 'raw 8-bit UTF-8', 'Превел'],
    ];
    for (const [file, charset, text] of contents) {
      it(`decoded content: ${charset} (${file})`, async () => {
        const body = await bodyOf(file);
        expect(body.content).to.include(text);
        expect(body.content).to.not.include('\uFFFD');
      });
    }

    it('decoded display name: windows-1251 base64 (addressFormat full)', async () => {
      const body = await bodyOf('charsets/mikelmail-raw_email_bad_time.eml', {
        routes: CONFIG.routes,
        mapping: { ...CONFIG.mapping, addressFormat: 'full' },
      });
      expect(body.from).to.equal('"Атиковa" <yusuf75thu@auracom.net>');
    });

    it('a To made only of an empty group leaves `to` out', async () => {
      const body = await bodyOf('headers-edge/mikelmail-empty_group_lists.eml');
      expect(body).to.not.have.property('to');
      expect(body.bcc).to.equal('support@example.com');
    });

    it('a message of one base64 image part has no content but the attachment', async () => {
      const body = await bodyOf('attachments/mailparser-base64encodedroot.eml');
      expect(body).to.not.have.property('content');
      expect(body.attachments?.map(a => a.name)).to.deep.equal([
        'screenshot.png',
      ]);
      const bytes = Buffer.from(body.attachments?.[0]?.file ?? '', 'base64');
      expect(bytes.subarray(1, 4).toString('latin1')).to.equal('PNG');
    });
  });
});
