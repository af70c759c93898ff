// S/MIME and PGP/MIME parts: CMS read (signed content, encrypted), the PGP control part, the note.
import { expect } from 'chai';
import * as asn1js from 'asn1js';
import { isPgpControl, encryptedNote } from '../../src/parse/secure-parts.js';
import type { ParsedAttachment } from '../../src/parse/parsed-message.js';
import { readCms } from '../../src/parse/smime.js';

/** A ContentInfo of `oid` around `content` ([0] EXPLICIT). */
function contentInfo(oid: string, content: asn1js.AsnType): Buffer {
  const info = new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: oid }),
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [content],
      }),
    ],
  });
  return Buffer.from(info.toBER());
}

/** A minimal SignedData whose encapsulated content is `entity`. */
function signedData(entity: asn1js.OctetString): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Set({ value: [] }),
      new asn1js.Sequence({
        value: [
          new asn1js.ObjectIdentifier({ value: '1.2.840.113549.1.7.1' }),
          new asn1js.Constructed({
            idBlock: { tagClass: 3, tagNumber: 0 },
            value: [entity],
          }),
        ],
      }),
      new asn1js.Set({ value: [] }),
    ],
  });
}

const ENTITY = 'Content-Type: text/plain\r\n\r\nsigned body\r\n';

describe('S/MIME and PGP/MIME parts', () => {
  it('signed-data: the encapsulated MIME entity', () => {
    const der = contentInfo(
      '1.2.840.113549.1.7.2',
      signedData(
        new asn1js.OctetString({
          valueHex: new TextEncoder().encode(ENTITY).buffer,
        }),
      ),
    );
    const cms = readCms(der);
    expect(cms.kind).to.equal('signed');
    expect(cms.kind === 'signed' && cms.content.toString()).to.equal(ENTITY);
  });

  it('signed-data with a constructed (BER) OCTET STRING: the pieces joined', () => {
    const piece = (text: string) =>
      new asn1js.OctetString({
        valueHex: new TextEncoder().encode(text).buffer,
      });
    const constructed = new asn1js.OctetString({
      idBlock: { isConstructed: true },
      value: [piece(ENTITY.slice(0, 10)), piece(ENTITY.slice(10))],
    } as ConstructorParameters<typeof asn1js.OctetString>[0]);
    const cms = readCms(
      contentInfo('1.2.840.113549.1.7.2', signedData(constructed)),
    );
    expect(cms.kind === 'signed' && cms.content.toString()).to.equal(ENTITY);
  });

  const kinds: Array<[string, Buffer, string]> = [
    [
      'enveloped-data',
      contentInfo('1.2.840.113549.1.7.3', new asn1js.Sequence({ value: [] })),
      'encrypted',
    ],
    [
      'authEnveloped-data',
      contentInfo(
        '1.2.840.113549.1.9.16.1.23',
        new asn1js.Sequence({ value: [] }),
      ),
      'encrypted',
    ],
    [
      'plain data',
      contentInfo('1.2.840.113549.1.7.1', new asn1js.OctetString({})),
      'other',
    ],
    ['no CMS at all', Buffer.from('hello'), 'other'],
    ['empty', Buffer.alloc(0), 'other'],
  ];
  for (const [title, der, kind] of kinds) {
    it(`${title}: ${kind}`, () => {
      expect(readCms(der).kind).to.equal(kind);
    });
  }

  describe('isPgpControl', () => {
    const part = (contentType: string): ParsedAttachment => ({
      filename: 'x',
      contentType,
      path: '/nonexistent',
      size: 12,
    });
    const rows: Array<[string, string, boolean]> = [
      ['application/pgp-encrypted', 'Version: 1\r\n', true],
      ['application/pgp-encrypted', 'version:1', true],
      ['application/pgp-encrypted', 'Version: 2\r\n', false],
      ['text/plain', 'Version: 1\r\n', false],
    ];
    for (const [type, text, control] of rows) {
      it(`${type} ${JSON.stringify(text)} -> ${control}`, () => {
        expect(isPgpControl(part(type), Buffer.from(text))).to.equal(control);
      });
    }
  });

  it('the note of an encrypted message names how and its attachments', () => {
    expect(
      encryptedNote('S/MIME', [
        { filename: 'smime.p7m', contentType: 'x/y', path: '', size: 1 },
      ]),
    ).to.equal(
      "[mailbridge: this message is encrypted (S/MIME); only its recipient's key can read it. It is attached as it came: smime.p7m.]",
    );
  });
});
