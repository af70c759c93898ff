// Signed and encrypted parts: an opaque S/MIME signed message opened, encryption said in words.
import { readFile } from 'node:fs/promises';
import { PermanentError } from '../errors/bridge-error.js';
import type { ParsedAttachment, ParsedMessage } from './parsed-message.js';
import { readCms } from './smime.js';

/** The largest application/pkcs7-mime part read (whole: CMS is parsed in memory). */
export const CMS_MAX_BYTES = 32 * 1024 * 1024;

const PKCS7_TYPES = new Set([
  'application/pkcs7-mime',
  'application/x-pkcs7-mime',
]);

/** PGP/MIME's control part (RFC 3156): `Version: 1`, nothing for a person. */
export function isPgpControl(
  attachment: ParsedAttachment,
  bytes: Buffer,
): boolean {
  return (
    attachment.contentType === 'application/pgp-encrypted' &&
    /^\s*Version:\s*1\s*$/i.test(bytes.toString('latin1'))
  );
}

export interface SecureParts {
  attachments: ParsedAttachment[];
  /** the messages opened from opaque signed parts, in order (their files are theirs to dispose) */
  opened: ParsedMessage[];
  /** how the message is encrypted, when it is */
  encrypted?: 'S/MIME' | 'OpenPGP';
}

/**
 * An opaque signed S/MIME part is opened: `parseEntity` parses the MIME entity it signs, whose
 * attachments come first; the part itself stays, as the signature. An enveloped (encrypted)
 * part, or PGP/MIME's control part (dropped), marks the message encrypted.
 */
export async function openSecureParts(
  attachments: readonly ParsedAttachment[],
  parseEntity: (bytes: Buffer) => Promise<ParsedMessage>,
  /** false: signed parts stay as they are (within a signed part already) */
  openSigned = true,
): Promise<SecureParts> {
  const out: ParsedAttachment[] = [];
  const opened: ParsedMessage[] = [];
  let encrypted: SecureParts['encrypted'];
  for (const attachment of attachments) {
    if (
      attachment.contentType === 'application/pgp-encrypted' &&
      attachment.size <= 64
    ) {
      if (isPgpControl(attachment, await readFile(attachment.path))) {
        encrypted ??= 'OpenPGP';
        continue;
      }
    }
    if (
      PKCS7_TYPES.has(attachment.contentType) &&
      attachment.size <= CMS_MAX_BYTES
    ) {
      const cms = readCms(await readFile(attachment.path));
      if (cms.kind === 'encrypted') encrypted ??= 'S/MIME';
      if (cms.kind === 'signed' && openSigned) {
        const message = await openEntity(cms.content, parseEntity);
        if (message) {
          opened.push(message);
          out.push(...message.attachments);
        }
      }
    }
    out.push(attachment);
  }
  return { attachments: out, opened, encrypted };
}

/** The signed entity parsed; undefined when it cannot be (the part then stays as it came). */
async function openEntity(
  bytes: Buffer,
  parseEntity: (bytes: Buffer) => Promise<ParsedMessage>,
): Promise<ParsedMessage | undefined> {
  try {
    return await parseEntity(bytes);
  } catch (err) {
    if (err instanceof PermanentError) return undefined;
    throw err;
  }
}

/** The note that stands for the content of an encrypted message. */
export function encryptedNote(
  how: 'S/MIME' | 'OpenPGP',
  attachments: readonly ParsedAttachment[],
): string {
  const names = attachments.map(a => a.filename).join(', ');
  return `[mailbridge: this message is encrypted (${how}); only its recipient's key can read it.${names ? ` It is attached as it came: ${names}.` : ''}]`;
}
