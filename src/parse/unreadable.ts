// A multipart message of which no part could be read: said in its content, its bytes attached.
import { Readable } from 'node:stream';
import type { AttachmentFiles } from './attachment-files.js';
import type { ParsedAttachment } from './parsed-message.js';
import type { Body } from './refine-parts.js';

/** The name the raw message is attached under. */
export const ORIGINAL_NAME = 'original.eml';

/** What the parser saw of the message's structure. */
export interface Structure {
  /** the top-level Content-Type is multipart/* */
  multipart: boolean;
  /** the parts it found below the top level */
  parts: number;
}

/**
 * The body of a multipart message in which the parser found no part at all (a boundary that
 * matches no delimiter it could recover, a part with a broken delimiter): a note saying so, and
 * the raw bytes attached as original.eml, so that nothing is lost without the agent knowing
 * and a mail reader can still open it. Only when the message has no body and no attachment
 * otherwise, and its body holds more than blank lines and delimiters (else it is empty, which
 * the mapper says). A streamed message (`raw` undefined: over 256 KiB) gets the note alone.
 */
export async function keepUnreadable(
  structure: Structure,
  raw: Buffer | undefined,
  body: Body,
  attachments: ParsedAttachment[],
  files: AttachmentFiles,
): Promise<Body> {
  if (!structure.multipart || structure.parts > 0 || attachments.length) {
    return body;
  }
  if (body.html?.trim() || body.text?.trim()) return body;
  // a streamed message is over 256 KiB: not an empty one; its bytes are not at hand
  if (!raw) return { text: unreadableNote(false) };
  // nothing but blank lines and delimiters: an empty message (the mapper says it has no body)
  if (!hasContent(raw)) return body;
  const stored = await files.store(Readable.from([raw]));
  if ('error' in stored) throw stored.error;
  attachments.push({
    filename: ORIGINAL_NAME,
    contentType: 'message/rfc822',
    path: stored.path,
    size: stored.size,
  });
  return { text: unreadableNote(true) };
}

/** Whether the body of `raw` (after its header block) has a line that is no delimiter. */
export function hasContent(raw: Buffer): boolean {
  const text = raw.toString('latin1');
  const end = /\r?\n\r?\n/.exec(text);
  if (!end) return false;
  return text
    .slice(end.index + end[0].length)
    .split(/\r?\n/)
    .some(line => line.trim() !== '' && !/^--\S*$/.test(line.trim()));
}

export function unreadableNote(attached: boolean): string {
  return `[mailbridge: no part of this message could be read (its MIME structure is broken)${attached ? `; it is attached as it came: ${ORIGINAL_NAME}` : ''}]`;
}
