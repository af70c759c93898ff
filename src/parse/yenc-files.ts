// yEnc blocks of a message's text, decoded from its raw bytes into attachment files (parse/yenc.ts
// decodes; this stores them beside the message's other attachments).
import { Readable } from 'node:stream';
import type { AttachmentFiles } from './attachment-files.js';
import { safeFilename } from './attachment-names.js';
import type { ParsedAttachment } from './parsed-message.js';
import { decodeYencBlocks } from './yenc.js';

export { withoutYenc } from './yenc.js';

/**
 * Stores each yEnc file of `raw` as an attachment (appended to `attachments`) when `text` has a
 * yEnc block. True when it stored one: the text then says the files are attached. A block the
 * raw bytes do not show (under a base64 or quoted-printable transfer encoding) gives no file,
 * and the text says it was left out. A disk error is thrown as it is (a local fault).
 */
export async function storeYencFiles(
  raw: Buffer,
  text: string | undefined,
  files: AttachmentFiles,
  attachments: ParsedAttachment[],
): Promise<boolean> {
  if (!text?.includes('=ybegin ')) return false;
  let stored = 0;
  for (const file of decodeYencBlocks(raw)) {
    const written = await files.store(Readable.from([file.data]));
    if ('error' in written) throw written.error;
    attachments.push({
      filename:
        safeFilename(file.name) ?? `attachment-${attachments.length + 1}.bin`,
      contentType: 'application/octet-stream',
      ...written,
    });
    stored++;
  }
  return stored > 0;
}
