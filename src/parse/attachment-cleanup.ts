// After parsing: a calendar invitation posted once as invite.ics, attached messages named after
// their subject.
import { open } from 'node:fs/promises';
import { safeFilename } from './attachment-names.js';
import type { ParsedAttachment } from './parsed-message.js';

/** Calendar files compared byte for byte up to this size; larger ones are never dropped. */
const CALENDAR_COMPARE_BYTES = 1024 * 1024;

/** The name an unnamed invitation gets (as Outlook and Gmail name theirs). */
export const INVITE_NAME = 'invite.ics';

/** The types of an attached message, named `<its subject>.eml`. */
export const MESSAGE_TYPES: ReadonlySet<string> = new Set([
  'message/rfc822',
  'message/global',
  'message/news',
]);

/**
 * The calendar parts of a message once: an unnamed text/calendar part (the alternative of an
 * invitation's text) is dropped when another calendar attachment has the same bytes, and one
 * left unnamed is named invite.ics.
 */
export async function calendarOnce(
  attachments: readonly ParsedAttachment[],
): Promise<ParsedAttachment[]> {
  const calendars = attachments.filter(isCalendar);
  if (calendars.length === 0) return [...attachments];
  const contents = new Map<ParsedAttachment, Buffer | undefined>();
  for (const calendar of calendars) {
    contents.set(calendar, await smallFile(calendar));
  }
  const dropped = new Set<ParsedAttachment>();
  for (const calendar of calendars) {
    if (!calendar.generatedName) continue;
    const bytes = contents.get(calendar);
    const twin = calendars.find(
      other =>
        other !== calendar &&
        !dropped.has(other) &&
        bytes !== undefined &&
        contents.get(other)?.equals(bytes) === true,
    );
    if (twin) dropped.add(calendar);
  }
  const taken = new Set(attachments.map(a => a.filename));
  return attachments
    .filter(a => !dropped.has(a))
    .map(a => {
      if (!isCalendar(a) || !a.generatedName) return a;
      if (taken.has(INVITE_NAME)) return a;
      taken.add(INVITE_NAME);
      return { ...a, filename: INVITE_NAME, generatedName: undefined };
    });
}

/** The types an iCalendar file comes as, or its extension. */
const CALENDAR_TYPES = new Set([
  'text/calendar',
  'application/ics',
  'text/x-vcalendar',
]);

export function isCalendar(attachment: ParsedAttachment): boolean {
  return (
    CALENDAR_TYPES.has(attachment.contentType) ||
    /\.ics$/i.test(attachment.filename)
  );
}

/** A file's bytes when it is small enough to compare; undefined otherwise. */
async function smallFile(
  attachment: ParsedAttachment,
): Promise<Buffer | undefined> {
  if (attachment.size > CALENDAR_COMPARE_BYTES) return undefined;
  const handle = await open(attachment.path, 'r');
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/**
 * Whether an attachment is an attached message without a name of its own: a generated one, or
 * a bare extension (`.eml`).
 */
export function wantsSubjectName(attachment: ParsedAttachment): boolean {
  if (!MESSAGE_TYPES.has(attachment.contentType)) return false;
  return (
    attachment.generatedName === true || /^\.[^.]*$/.test(attachment.filename)
  );
}

/**
 * `<subject>.eml`: the subject made a file name (slashes and colons become `_`, so that
 * "Re: a/b" is not cut to "b"), or undefined when it has nothing to show.
 */
export function subjectFilename(
  subject: string | undefined,
): string | undefined {
  const stem = subject
    ?.replace(/[\\/:*?"<>|]/g, '_')
    .replace(/\s+/g, ' ')
    .trim();
  if (!stem || /^[_. ]*$/.test(stem)) return undefined;
  return safeFilename(`${stem}.eml`) ?? undefined;
}

/**
 * Each attached message without a name of its own named `<its subject>.eml` (`subjectOf` reads
 * the Subject from its file); without a subject, a generated `attachment-N.eml`.
 */
export async function nameAttachedMessages(
  attachments: ParsedAttachment[],
  subjectOf: (path: string) => Promise<string | undefined>,
): Promise<void> {
  for (const [i, attachment] of attachments.entries()) {
    if (!wantsSubjectName(attachment)) continue;
    const name = subjectFilename(await subjectOf(attachment.path));
    attachments[i] = name
      ? { ...attachment, filename: name, generatedName: undefined }
      : {
          ...attachment,
          filename: `attachment-${i + 1}.eml`,
          generatedName: true,
        };
  }
}

/**
 * Without message/external-body parts: they only point at a file kept elsewhere (an FTP site, a
 * mail server), and would be posted as empty files. Nor an unnamed text/watch-html part: Apple
 * Watch's alternative of the body (Nodemailer writes one), which mailparser leaves among the
 * attachments; the body is already posted in its other forms.
 */
export function withoutExternalBodies(
  attachments: readonly ParsedAttachment[],
): ParsedAttachment[] {
  return attachments.filter(
    a =>
      a.contentType !== 'message/external-body' &&
      !(a.contentType === 'text/watch-html' && a.generatedName),
  );
}

/**
 * Without empty parts: a part with no bytes in the message (an empty image, an empty attached
 * message, an x-uuencode part without lines) would be posted as a 0-byte file that opens to
 * nothing. It is left out; when nothing else is left, the content says the message has no body.
 */
export function withoutEmptyParts(
  attachments: readonly ParsedAttachment[],
): ParsedAttachment[] {
  return attachments.filter(a => a.size > 0);
}
