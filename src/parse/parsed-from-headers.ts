// What mailparser gave, as a ParsedMessage: headers to addresses, ids and priority, an attachment
// stream's headers to its name. Types of mailparser only: parse-message.ts stays its one importer.
import type { AddressObject, AttachmentStream, Headers } from 'mailparser';
import { attachmentName, givenName } from './attachment-names.js';
import { splitBareName } from './header-repair.js';
import type {
  MailAddress,
  ParsedAttachment,
  ParsedMessage,
} from './parsed-message.js';
import type { Body } from './refine-parts.js';

/** The message from its headers (`bare`: address headers written as bare addresses), body and files. */
export function toParsedMessage(
  headers: Headers,
  bare: Set<string>,
  body: Body,
  attachments: ParsedAttachment[],
  raw: Pick<ParsedMessage, 'digest' | 'size' | 'dispose'>,
): ParsedMessage {
  const priority = headers.get('priority');
  const from = headers.get('from') as AddressObject | undefined;
  const subject = headers.get('subject');
  const list = (key: string) =>
    addresses(
      headers.get(key) as AddressObject | AddressObject[] | undefined,
      bare.has(key),
    );
  return {
    from: addresses(from, bare.has('from'))[0],
    to: list('to'),
    cc: list('cc'),
    replyTo: list('reply-to'),
    subject: typeof subject === 'string' ? subject : undefined,
    text: body.text,
    html: body.html,
    messageId: headerText(headers.get('message-id')),
    inReplyTo: headerText(headers.get('in-reply-to')),
    references: referenceList(
      headers.get('references') as string | string[] | undefined,
    ),
    priority: priority === 'high' || priority === 'low' ? priority : 'normal',
    attachments,
    ...raw,
  };
}

function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

function referenceList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap(ref =>
    ref.split(/\s+/).filter(Boolean),
  );
}

type AddressEntry = AddressObject['value'][number];

/**
 * The addresses of a header; `bare` when it was written as bare addresses separated by spaces
 * (which the parser reads as one address whose display name is the others).
 */
function addresses(
  field: AddressObject | AddressObject[] | undefined,
  bare = false,
): MailAddress[] {
  if (!field) return [];
  const objects = Array.isArray(field) ? field : [field];
  const flatten = (entry: AddressEntry): AddressEntry[] =>
    entry.group ? entry.group.flatMap(flatten) : [entry];
  return objects
    .flatMap(object => object.value.flatMap(flatten))
    .filter(entry => Boolean(entry.address))
    .flatMap(entry => {
      const others = bare ? splitBareName(entry.name ?? '') : [];
      return others.length
        ? [entry.address ?? '', ...others].map(address => ({
            address,
            name: '',
          }))
        : [{ address: entry.address ?? '', name: entry.name ?? '' }];
    });
}

export function toAttachment(
  attachment: AttachmentStream,
  index: number,
  stored: { path: string; size: number },
): ParsedAttachment {
  const contentType = (attachment.contentType || 'application/octet-stream')
    .toLowerCase()
    .trim();
  const location = attachment.headers.get('content-location');
  const contentLocation =
    typeof location === 'string' && location.trim()
      ? location.trim()
      : undefined;
  const given = givenName({
    filename: attachment.filename,
    contentLocation,
    contentType,
  });
  return {
    filename: given ?? attachmentName({ contentType, index }),
    ...(!given && { generatedName: true }),
    contentType,
    path: stored.path,
    size: stored.size,
    contentId: attachment.cid,
    ...(contentLocation && { contentLocation }),
  };
}
