// Attachments and inline images of real-world messages (test/fixtures/corpus), as posted.
import { expect } from 'chai';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { payloadToString } from '../../src/api/payload-stream.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import { buildPayloads } from '../../src/pipeline/build-payloads.js';

const CORPUS = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

const CONFIG: Config = loadConfig({
  env: { NODE_ENV: 'test' },
  overrides: { routes: [{ match: '*' }] },
});

/** The body (as posted) a corpus file gives for the catch-all route. */
async function bodyOf(
  file: string,
  config: Pick<Config, 'routes' | 'mapping'> = CONFIG,
): Promise<ApiPayload<string>> {
  const message = await parseMessage(join(CORPUS, file));
  try {
    const [only] = buildPayloads(
      message,
      {
        id: 'corpus',
        mailFrom: 'sender@example.net',
        rcptTo: ['support@example.com'],
        receivedAt: '2026-01-01T00:00:00.000Z',
      },
      config,
    );
    return JSON.parse(
      await payloadToString(only!.payload),
    ) as ApiPayload<string>;
  } finally {
    await message.dispose();
  }
}

const names = (body: ApiPayload<string>) =>
  (body.attachments ?? []).map(a => a.name);

const decodedSize = (base64: string) => Buffer.from(base64, 'base64').length;

describe('corpus: attachments and inline images', () => {
  describe('inline images: shown as data: URLs, no cid: left, still attachments', () => {
    const rows: Array<[file: string, shown: number, attachments: number]> = [
      ['html/deltachat-many_images_amazon_via_apple_mail.eml', 15, 15],
      ['html/deltachat-apple_cid_jpg.eml', 1, 1],
      ['html/deltachat-wrong-html.eml', 1, 1],
      // its text/watch-html body alternative is no attachment
      ['html/mailparser-nodemailer.eml', 2, 3],
      ['html/mimekit-multipart-related-mhtml.eml', 1, 1],
      ['attachments/mimekit-related.eml', 1, 1],
      ['forwarded/mikelmail-attachment_message_rfc822_inline_image.eml', 1, 2],
      ['bounces-dsn/deltachat-gmail_ndn.eml', 1, 2],
    ];
    for (const [file, shown, attachments] of rows) {
      it(file, async () => {
        const body = await bodyOf(file);
        const content = body.content ?? '';
        expect(content).to.not.match(/cid:/i);
        const urls = content.match(
          /<img\b[^>]*\bsrc="data:image\/[a-z]+;base64,/g,
        );
        expect(urls, 'data: URLs').to.have.length(shown);
        expect(body.attachments).to.have.length(attachments);
      });
    }

    it('the Amazon message: each image shown is its attachment', async () => {
      const body = await bodyOf(
        'html/deltachat-many_images_amazon_via_apple_mail.eml',
      );
      const content = body.content ?? '';
      for (const attachment of body.attachments ?? []) {
        expect(content, attachment.name).to.include(
          `;base64,${attachment.file}"`,
        );
      }
    });

    it('MHTML: the image named by Content-Location is shown and named after it', async () => {
      const body = await bodyOf('html/mimekit-multipart-related-mhtml.eml');
      expect(names(body)).to.deep.equal(['image1.png']);
      expect(body.content).to.include(
        `<img src="data:image/png;base64,${body.attachments![0]!.file}"`,
      );
    });

    it('an empty image (0 bytes) is not posted: the <img> shows its alt text', async () => {
      const body = await bodyOf(
        'bounces-dsn/sisimai-lhost-googleworkspace-01.eml',
      );
      expect(body.content).to.not.match(/cid:/i);
      expect(body.content).to.include('[image: Error Icon]');
      expect(names(body)).to.not.include('icon.png');
    });

    it('with content: text the images are named in the text', async () => {
      const body = await bodyOf('html/mimekit-multipart-related-mhtml.eml', {
        routes: CONFIG.routes,
        mapping: { ...CONFIG.mapping, content: 'text' },
      });
      expect(body.content).to.not.include('data:');
      expect(decodedSize(body.attachments![0]!.file)).to.equal(889);
    });
  });

  describe('calendar invitations: posted once', () => {
    const rows: Array<[string, string[]]> = [
      ['calendar/james-alternative.cal.eml', ['invite.ics']],
      ['calendar/james-yahooInvitation.eml', ['invite.ics']],
      // the sender named it: its name is kept (the images are the invitation's icons)
      [
        'calendar/james-invitationEmailFromOP.eml',
        [
          'account-multiple.png',
          'check.png',
          'clock.png',
          'email.png',
          'logo.png',
          'meeting.ics',
        ],
      ],
      ['calendar/james-calendar.eml', ['invite.ics']],
      ['calendar/deltachat-calendar-alternative.eml', ['invite.ics']],
    ];
    for (const [file, expected] of rows) {
      it(file, async () => {
        const body = await bodyOf(file);
        expect(names(body)).to.deep.equal(expected);
        const ics = body.attachments!.find(a => a.name.endsWith('.ics'))!;
        expect(Buffer.from(ics.file, 'base64').toString()).to.match(
          /^BEGIN:VCALENDAR/,
        );
      });
    }
  });

  describe('attached messages: named after their subject', () => {
    const rows: Array<[string, string[]]> = [
      [
        'forwarded/deltachat-big_forwarded_with_big_attachment.eml',
        ['Some subject.eml'],
      ],
      [
        'forwarded/flanker-apache-message-news-mime.eml',
        ['Netscape Enterprise vs. Apache Secure.eml'],
      ],
      [
        'forwarded/mimekit-rfc2060.eml',
        [
          'attachment-1.bin',
          'This part specifier should be_ 3.eml',
          'attachment-3.gif',
          'This part specifier should be_ 4.2.eml',
        ],
      ],
      // no Subject in the attached message: named after its sender, not ".eml"
      ['forwarded/deltachat-attached-eml.eml', ['Message from adb.eml']],
      // a name of its own is kept
      ['forwarded/flanker-enclosed.eml', ['thanks.eml']],
      // RFC 2047 decoded
      ['bounces-dsn/sisimai-lhost-office365-04.eml', ['ニャーン.eml']],
    ];
    for (const [file, expected] of rows) {
      it(file, async () => {
        expect(names(await bodyOf(file))).to.deep.equal(expected);
      });
    }
  });

  it('message/external-body: no empty files (attachments/flanker-message-external-body.eml)', async () => {
    const body = await bodyOf('attachments/flanker-message-external-body.eml');
    expect(body).to.not.have.property('attachments');
    expect(body.content).to.include('authentication');
  });

  it('a nameless part named by its Content-Location (attachments/mikelmail-attachment_content_location.eml)', async () => {
    const body = await bodyOf(
      'attachments/mikelmail-attachment_content_location.eml',
    );
    expect(names(body)).to.deep.equal(['Photo25.jpg']);
  });

  it('a named text part without Content-Disposition stays an attachment (attachments/james-noContentDispositionWithCID.eml)', async () => {
    const body = await bodyOf(
      'attachments/james-noContentDispositionWithCID.eml',
    );
    expect(names(body)).to.deep.equal(['attachment.txt']);
    expect(
      Buffer.from(body.attachments![0]!.file, 'base64').toString(),
    ).to.equal("I'm a Schroedinger cat");
    expect(body.content).to.include("I'm the body!");
    expect(body.content).to.not.include('Schroedinger');
  });

  it('an HTML body with invalid dispositions is the content (malformed/mikelmail-multiple_invalid_content_dispositions.eml)', async () => {
    const body = await bodyOf(
      'malformed/mikelmail-multiple_invalid_content_dispositions.eml',
    );
    expect(body.content?.trim()).to.equal('<p>foo</p>');
    expect(body).to.not.have.property('attachments');
  });

  it('a message that is only a multipart/digest gives its messages (forwarded/mimekit-multipart-digest.eml)', async () => {
    const body = await bodyOf('forwarded/mimekit-multipart-digest.eml');
    expect(names(body)).to.deep.equal(['m1.eml', 'm2.eml', 'submsg.eml']);
    const m2 = Buffer.from(body.attachments![1]!.file, 'base64').toString();
    expect(m2).to.include('m2 body');
    expect(body.content).to.include('m1.eml, m2.eml');
  });

  it('files of opened messages (digest, signed) and unpacked TNEF are removed by dispose()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mb-att-'));
    try {
      for (const file of [
        'forwarded/mimekit-multipart-digest.eml',
        'signed-encrypted/james-mail_with_signature_and_content_type_xpkcs7mime.eml',
        'tnef/mimekit-rich-text.eml',
      ]) {
        const message = await parseMessage(join(CORPUS, file), {
          attachmentDir: dir,
        });
        expect(await readdir(dir), file).to.not.deep.equal([]);
        await message.dispose();
        expect(await readdir(dir), file).to.deep.equal([]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('signed and encrypted', () => {
    it('opaque S/MIME signed (x-pkcs7-mime): the signed text is the content, the signature kept', async () => {
      const body = await bodyOf(
        'signed-encrypted/james-mail_with_signature_and_content_type_xpkcs7mime.eml',
      );
      expect(body.content).to.include('test SMIME');
      expect(names(body)).to.deep.equal(['smime.p7m']);
    });

    it('S/MIME encrypted: the content says so', async () => {
      const body = await bodyOf('signed-encrypted/james-crypted.eml');
      expect(body.content).to.include('this message is encrypted (S/MIME)');
      expect(names(body)).to.deep.equal(['smime.p7m']);
    });

    for (const file of [
      'signed-encrypted/deltachat-thunderbird_encrypted_signed.eml',
      'signed-encrypted/deltachat-thunderbird_encrypted_unsigned_with_unencrypted_subject.eml',
    ]) {
      it(`PGP/MIME encrypted: the content says so, no Version: 1 part (${file})`, async () => {
        const body = await bodyOf(file);
        expect(body.content).to.include('this message is encrypted (OpenPGP)');
        expect(names(body)).to.deep.equal(['encrypted.asc']);
      });
    }

    it('detached S/MIME signature: unchanged (text and smime.p7s)', async () => {
      const body = await bodyOf(
        'signed-encrypted/mimekit-thunderbird-signed.eml',
      );
      expect(names(body)).to.deep.equal(['signed.jpg', 'smime.p7s']);
    });
  });

  describe('TNEF: winmail.dat unpacked into its files and body', () => {
    it('tnef/mimekit-rich-text.eml: the JPEG and the attached messages', async () => {
      const body = await bodyOf('tnef/mimekit-rich-text.eml');
      expect(names(body)).to.deep.equal([
        'kitten-playing-with-a-christmas-tree.jpg',
        'Build a train table.rtf',
        'Christmas Celebration!.rtf',
        // the attached message "Christmas Celebration!" carries the photo too: the same name
        // and bytes, posted once
      ]);
      const jpeg = Buffer.from(body.attachments![0]!.file, 'base64');
      expect(jpeg.length).to.equal(375081);
      expect([...jpeg.subarray(0, 3)]).to.deep.equal([0xff, 0xd8, 0xff]);
      const rtf = Buffer.from(body.attachments![1]!.file, 'base64');
      expect(rtf.toString('latin1')).to.match(/^\{\\rtf1/);
      expect(body.content).to.include('Christmas to remember');
    });

    it('tnef/mimekit-ukr.eml: the HTML body (KOI8-R) is the content, nothing left over', async () => {
      const body = await bodyOf('tnef/mimekit-ukr.eml');
      expect(body).to.not.have.property('attachments');
      expect(body.content).to.include('<p>шостий</p>');
      expect(body.content).to.include('RR Test 1');
    });

    for (const file of [
      'tnef/sisimai-lhost-amazonworkmail-01.eml',
      'tnef/sisimai-lhost-amazonworkmail-07.eml',
    ]) {
      it(`${file}: a winmail.dat of properties only is not posted`, async () => {
        const body = await bodyOf(file);
        expect(names(body)).to.not.include('winmail.dat');
        expect(names(body)).to.have.length(1);
      });
    }
  });
});
