// After mailparser: the parts of a message made what a helpdesk wants, one stage after another.
import { PermanentError } from '../errors/bridge-error.js';
import type { AttachmentFiles } from './attachment-files.js';
import {
  MESSAGE_TYPES,
  calendarOnce,
  nameAttachedMessages,
  withoutEmptyParts,
  withoutExternalBodies,
} from './attachment-cleanup.js';
import { embedInlineImages } from './inline-images.js';
import type { ParsedAttachment, ParsedMessage } from './parsed-message.js';
import {
  encryptedNote,
  openSecureParts,
  type SecureParts,
} from './secure-parts.js';
import { unpackTnef } from './tnef-unpack.js';

/** A message's body as the parser found it, or as a stage changed it. */
export interface Body {
  html?: string;
  text?: string;
}

export interface RefineTools {
  /** where unpacked files are written (and removed with the message's) */
  files: AttachmentFiles;
  /** the decoded Subject of an attached message's file (else `Message from SENDER`) */
  subjectOf: (path: string) => Promise<string | undefined>;
  /**
   * parses a MIME entity (bytes, or a file's path: streamed when large) one level down; without
   * it, signed parts and lone attached messages stay closed
   */
  parseEntity?: (source: Buffer | string) => Promise<ParsedMessage>;
  /** receives each message opened from a signed part, at once, so that it is disposed of */
  opened: ParsedMessage[];
}

/**
 * The stages, in order: winmail.dat unpacked; message/external-body references and empty parts
 * dropped; an invitation once; attached messages named; an opaque signed part opened, encryption said; the
 * images the HTML shows given their data: URLs.
 */
export async function refineParts(
  parsed: readonly ParsedAttachment[],
  body: Body,
  tools: RefineTools,
): Promise<{ attachments: ParsedAttachment[]; body: Body }> {
  const tnef = await unpackTnef(parsed, tools.files);
  let attachments = await calendarOnce(
    withoutEmptyParts(withoutExternalBodies(tnef.attachments)),
  );
  await nameAttachedMessages(attachments, tools.subjectOf);
  let refined = withTnefBody(body, tnef);
  const secure = await openSecureParts(
    attachments,
    async bytes => {
      const message = await tools.parseEntity!(bytes);
      tools.opened.push(message);
      return message;
    },
    Boolean(tools.parseEntity),
  );
  attachments = secure.attachments;
  refined = withSecureBody(refined, secure, tools.opened);
  if (tools.parseEntity) {
    ({ attachments, body: refined } = await openLoneMessage(
      attachments,
      refined,
      async path => {
        const message = await tools.parseEntity!(path);
        tools.opened.push(message);
        return message;
      },
    ));
  }
  if (refined.html !== undefined) {
    await embedInlineImages(refined.html, attachments);
  }
  return { attachments, body: refined };
}

/** The body, given the HTML (or, with no body at all, the text) of its TNEF. */
function withTnefBody(body: Body, tnef: Body): Body {
  if (body.html === undefined && tnef.html) return { ...body, html: tnef.html };
  if (body.text === undefined && body.html === undefined && tnef.text) {
    return { text: tnef.text };
  }
  return body;
}

/**
 * The body, else the body of the message an opaque signed part holds, else (an encrypted
 * message) a note that says so.
 */
function withSecureBody(
  body: Body,
  secure: SecureParts,
  opened: readonly ParsedMessage[],
): Body {
  if (body.html || body.text?.trim()) return body;
  const inner = opened.find(m => m.html || m.text?.trim());
  if (inner) return { html: inner.html, text: inner.text };
  if (secure.encrypted) {
    return { text: encryptedNote(secure.encrypted, secure.attachments) };
  }
  return body;
}

/**
 * A message with no body whose one attachment is a message (a forward with nothing said, a
 * message/rfc822 or a digest sent as it is): that message is opened one level, its body becomes
 * the content and its attachments (a digest's messages) come first; the attached message stays.
 */
async function openLoneMessage(
  attachments: ParsedAttachment[],
  body: Body,
  /** parses the attached message from its file (streamed when large, as any message) */
  parseEntity: (path: string) => Promise<ParsedMessage>,
): Promise<{ attachments: ParsedAttachment[]; body: Body }> {
  const [only] = attachments;
  if (body.html?.trim() || body.text?.trim()) return { attachments, body };
  if (
    attachments.length !== 1 ||
    !only ||
    !MESSAGE_TYPES.has(only.contentType)
  ) {
    return { attachments, body };
  }
  const inner = await parseEntity(only.path).catch((err: unknown) => {
    if (err instanceof PermanentError) return undefined;
    throw err;
  });
  if (!inner) return { attachments, body };
  const names = inner.attachments.map(a => a.filename);
  const opened =
    inner.html?.trim() || inner.text?.trim()
      ? { html: inner.html, text: inner.text }
      : names.length
        ? {
            text: `[mailbridge: this message carries only attachments: ${names.join(', ')}]`,
          }
        : body;
  return { attachments: [...inner.attachments, only], body: opened };
}
