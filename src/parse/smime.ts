// PURE: what an S/MIME application/pkcs7-mime part is (RFC 8551), and the content of a signed one.
import * as asn1js from 'asn1js';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const ENVELOPED = new Set([
  '1.2.840.113549.1.7.3', // envelopedData
  '1.2.840.113549.1.9.16.1.23', // authEnvelopedData
]);

/** An S/MIME part: signed (its MIME entity inside), encrypted, or something else. */
export type CmsContent =
  | { kind: 'signed'; content: Buffer }
  | { kind: 'encrypted' }
  | { kind: 'other' };

/**
 * Reads a CMS ContentInfo (DER or BER, as S/MIME clients write it): the encapsulated MIME
 * entity of signed-data, or that it is enveloped (encrypted). `other` for anything else,
 * including bytes that are no CMS at all.
 */
export function readCms(der: Uint8Array): CmsContent {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) return { kind: 'other' };
  const info = parsed.result;
  if (!(info instanceof asn1js.Sequence)) return { kind: 'other' };
  const [type, explicit] = info.valueBlock.value;
  if (!(type instanceof asn1js.ObjectIdentifier)) return { kind: 'other' };
  const oid = type.valueBlock.toString();
  if (ENVELOPED.has(oid)) return { kind: 'encrypted' };
  if (oid !== ID_SIGNED_DATA) return { kind: 'other' };
  const signedData = childOf(explicit, 0);
  // SignedData: version, digestAlgorithms, encapContentInfo, ...
  const encapsulated = childOf(signedData, 2);
  const eContent = childOf(childOf(encapsulated, 1), 0);
  const content = octets(eContent);
  return content ? { kind: 'signed', content } : { kind: 'other' };
}

/** The index-th element of a constructed value, if any. */
function childOf(
  value: asn1js.AsnType | undefined,
  index: number,
): asn1js.AsnType | undefined {
  const block = (value as { valueBlock?: { value?: unknown } } | undefined)
    ?.valueBlock?.value;
  return Array.isArray(block)
    ? (block[index] as asn1js.AsnType | undefined)
    : undefined;
}

/** The bytes of an OCTET STRING, primitive or constructed (BER pieces joined). */
function octets(value: asn1js.AsnType | undefined): Buffer | undefined {
  if (!(value instanceof asn1js.OctetString)) return undefined;
  if (!value.valueBlock.isConstructed) {
    return Buffer.from(value.valueBlock.valueHexView);
  }
  const pieces: Buffer[] = [];
  for (const piece of value.valueBlock.value) {
    const bytes = octets(piece);
    if (!bytes) return undefined;
    pieces.push(bytes);
  }
  return Buffer.concat(pieces);
}
