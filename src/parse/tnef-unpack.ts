// TNEF attachments (winmail.dat) replaced by the files they carry; their HTML body kept.
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { AttachmentFiles } from './attachment-files.js';
import { EXTENSIONS, attachmentName, givenName } from './attachment-names.js';
import type { ParsedAttachment } from './parsed-message.js';
import { decodeTnef, isTnef, type TnefContent } from './tnef.js';

/**
 * The largest winmail.dat unpacked: it is read whole (TNEF has its lengths up front, and its
 * files are slices of it); SMTP's size limit bounds it already. A larger one stays as it came.
 */
export const TNEF_MAX_BYTES = 32 * 1024 * 1024;

const TNEF_TYPES = new Set(['application/ms-tnef', 'application/vnd.ms-tnef']);

/** Whether an attachment is declared TNEF: by its type, or the name Outlook gives it. */
export function isTnefPart(attachment: ParsedAttachment): boolean {
  return (
    TNEF_TYPES.has(attachment.contentType) ||
    attachment.filename.toLowerCase() === 'winmail.dat'
  );
}

/**
 * Each TNEF attachment replaced by its files (written like any attachment), in its place; an
 * empty one (only Outlook's properties) goes. One that is not TNEF after all, too large, or
 * broken stays as it came. The HTML or text body of the first one that has one is returned.
 */
export async function unpackTnef(
  attachments: readonly ParsedAttachment[],
  files: AttachmentFiles,
): Promise<{
  attachments: ParsedAttachment[];
  html?: string;
  text?: string;
}> {
  const out: ParsedAttachment[] = [];
  let html: string | undefined;
  let text: string | undefined;
  for (const attachment of attachments) {
    const content = isTnefPart(attachment)
      ? await readTnef(attachment)
      : undefined;
    if (!content) {
      out.push(attachment);
      continue;
    }
    html ??= content.html;
    text ??= content.text;
    for (const file of distinctFiles(content.files)) {
      const stored = await files.store(Readable.from([file.data]));
      if ('error' in stored) throw stored.error;
      const contentType = typeOf(file.contentType, file.name);
      out.push({
        filename: attachmentName({
          filename: file.name,
          contentType,
          index: out.length,
        }),
        ...(!givenName({ filename: file.name, contentType }) && {
          generatedName: true,
        }),
        contentType,
        path: stored.path,
        size: stored.size,
        ...(file.contentId && { contentId: file.contentId }),
      });
    }
  }
  return { attachments: out, html, text };
}

/**
 * The files of one winmail.dat, each once: Outlook may record one file twice (as an attachment
 * and again for the rich text that shows it); a second with the same name and bytes is left out.
 */
export function distinctFiles<T extends { name?: string; data: Buffer }>(
  files: readonly T[],
): T[] {
  const kept: T[] = [];
  for (const file of files) {
    const twin = kept.some(
      other => other.name === file.name && other.data.equals(file.data),
    );
    if (!twin) kept.push(file);
  }
  return kept;
}

/** The decoded TNEF of an attachment, or undefined when it stays as it came. */
async function readTnef(
  attachment: ParsedAttachment,
): Promise<TnefContent | undefined> {
  if (attachment.size > TNEF_MAX_BYTES || attachment.size < 6) return undefined;
  const bytes = await readFile(attachment.path);
  if (!isTnef(bytes)) return undefined;
  try {
    return decodeTnef(bytes);
  } catch {
    return undefined;
  }
}

/** A file's type: the one its sender's client recorded, else one known for its extension. */
export function typeOf(
  recorded: string | undefined,
  name: string | undefined,
): string {
  const type = recorded?.toLowerCase().trim();
  if (type && /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(type)) return type;
  const extension = /\.([^.]+)$/.exec(name ?? '')?.[1]?.toLowerCase();
  const known = Object.entries(EXTENSIONS).find(([, e]) => e === extension);
  if (known) return known[0];
  if (extension === 'jpeg') return 'image/jpeg';
  return 'application/octet-stream';
}
