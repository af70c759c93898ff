// PURE: (parsed message, envelope, route group, mapping options) -> the API body. No I/O, no clock.
import type { MappingConfig } from '../config/schema.js';
import type { Envelope } from '../mail/envelope.js';
import type { MailAddress, ParsedMessage } from '../parse/parsed-message.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import type { ApiPayload } from './api-payload.js';
import { resolveInlineImages } from './cid.js';
import { cleanHeaderText } from './header-text.js';
import {
  htmlToPlainText,
  reducedText,
  sanitizeMailHtml,
  textToHtml,
} from './html.js';
import {
  extractIds,
  formatId,
  generatedId,
  isThreadableId,
} from '../mail/message-id.js';
import { bodiesToMap, type Bodies } from './strip-quotes.js';
import { threadFromSubject } from './thread-from-subject.js';

export interface MappingInput {
  message: ParsedMessage;
  envelope: Envelope;
  group: RouteGroup;
  mapping: MappingConfig;
}

/**
 * The longest subject posted, in characters: RFC 5322's line limit. A longer one (a header of
 * 130,000 characters is in the corpus) is cut and marked, so no API field limit refuses the
 * body for it and no agent's list shows a wall of text.
 */
export const MAX_SUBJECT_CHARS = 998;

function capped(subject: string): string {
  if (subject.length <= MAX_SUBJECT_CHARS) return subject;
  const chars = Array.from(subject);
  return chars.length <= MAX_SUBJECT_CHARS
    ? subject
    : `${chars.slice(0, MAX_SUBJECT_CHARS - 1).join('')}…`;
}

/** Maps one message for one route onto the API body. */
export function toApiPayload(input: MappingInput): ApiPayload {
  const { message, envelope, group, mapping } = input;
  const format = (a: MailAddress) => formatAddress(a, mapping.addressFormat);
  // No header-derived field carries control characters (contract): each is cleaned first.
  // An entry with no address (a bare group, a broken header) is no address at all.
  const from = senderOf(message, group.route.fromReplyTo === true);
  const to = message.to.map(cleanAddress).filter(a => a.address.trim());
  const cc = message.cc.map(cleanAddress).filter(a => a.address.trim());
  const visible = new Set([...to, ...cc].map(a => a.address.toLowerCase()));
  const bcc = group.recipients
    .map(cleanHeaderText)
    .filter(r => !visible.has(r.toLowerCase()));
  const subject = clean(message.subject);
  const ids = messageIds({
    messageId: clean(message.messageId),
    inReplyTo: clean(message.inReplyTo),
    references: message.references.map(cleanHeaderText),
    // read only when there is no Message-ID to keep (parse-message.ts computes it when read)
    get digest() {
      return message.digest;
    },
  });

  const mapped: ApiPayload = {
    from: from ? format(from) : clean(envelope.mailFrom ?? undefined),
    to: joinAddresses(to.map(format)),
    cc: joinAddresses(cc.map(format)),
    bcc: joinAddresses(bcc),
    subject: subject?.trim() ? capped(subject) : undefined,
    content: withNoBodyNote(
      content(bodiesToMap(message, group.route, mapping.maxHtmlBytes), mapping),
      message,
      mapping,
    ),
    attachments: message.attachments.length
      ? message.attachments.map(a => ({
          name: cleanHeaderText(a.filename),
          file: { path: a.path, size: a.size },
        }))
      : undefined,
    ext_msg_id: formatId(ids.messageId, mapping.messageIdBrackets),
    // the thread guard: a sender that failed authentication starts a new ticket, whatever
    // thread its headers or the +subaddress name (auth/verdict.ts)
    reply_to_ext_msg_id:
      ids.replyTo && !group.untrustedSender
        ? formatId(ids.replyTo, mapping.messageIdBrackets)
        : undefined,
    mailbox_id: group.route.mailbox_id,
    // the +subaddress first: the helpdesk wrote it into the address; a subject is easily edited
    thread_id: group.untrustedSender
      ? undefined
      : clean(
          group.threadId ??
            threadFromSubject(subject, group.route.threadFromSubject),
        ),
    // list and machine-sent mail is never urgent (nor low): its headers are not taken
    priority:
      mapping.priority[group.noise ? 'normal' : message.priority] ?? undefined,
  };
  // A route field (e.g. a default priority) stays unless the mapper has a value for its key.
  return withoutEmpty({ ...group.route.fields, ...withoutEmpty(mapped) });
}

/**
 * Whose message it is: the From address; with `fromReplyTo`, the Reply-To address instead when
 * Reply-To names exactly one (a web form sends as noreply@ with the customer in Reply-To).
 */
function senderOf(
  message: ParsedMessage,
  fromReplyTo: boolean,
): MailAddress | undefined {
  if (fromReplyTo) {
    const replyTo = (message.replyTo ?? [])
      .map(cleanAddress)
      .filter(a => a.address.trim());
    if (replyTo.length === 1) return replyTo[0];
  }
  const sender = message.from && cleanAddress(message.from);
  return sender?.address.trim() ? sender : undefined;
}

/** The normalised Message-ID (generated when missing) and the id this message replies to. */
export function messageIds(
  message: Pick<
    ParsedMessage,
    'messageId' | 'inReplyTo' | 'references' | 'digest'
  >,
): {
  messageId: string;
  replyTo?: string;
} {
  const messageId =
    extractIds(message.messageId)[0] ?? generatedId(message.digest);
  // References as one value: a comment may span several of its words. Only an id that looks
  // like one (id-left@id-right) is a reply target: a fragment of a broken fold is skipped.
  const replyTo =
    extractIds(message.inReplyTo).find(isThreadableId) ??
    extractIds(message.references.join(' ')).findLast(isThreadableId);
  return { messageId, replyTo };
}

/**
 * The content of a message with neither text nor an attachment: an agent would take an empty
 * ticket for a fault of the helpdesk or of mailbridge, so it says the message itself is empty.
 */
export const NO_BODY_NOTE = '[mailbridge: this message has no body]';

function withNoBodyNote(
  posted: string | undefined,
  message: ParsedMessage,
  mapping: MappingConfig,
): string | undefined {
  if (posted !== undefined || message.attachments.length) return posted;
  return mapping.content === 'text' ? NO_BODY_NOTE : textToHtml(NO_BODY_NOTE);
}

function content(message: Bodies, mapping: MappingConfig): string | undefined {
  const text = nonBlank(message.text);
  const writtenHtml = nonBlank(message.html);
  if (writtenHtml && writtenHtml.length > mapping.maxHtmlBytes) {
    return oversizedHtml(writtenHtml, text, mapping);
  }
  // inline images shown (data: URLs) or named: no cid: left dangling
  const rawHtml =
    writtenHtml && resolveInlineImages(writtenHtml, message.attachments);
  // HTML that sanitizes to nothing (only a script, say) is no HTML body: fall back to the text.
  const html =
    rawHtml && mapping.sanitizeHtml
      ? nonBlank(sanitizeMailHtml(rawHtml, mapping.remoteImages))
      : rawHtml;
  switch (mapping.content) {
    case 'text':
      return text ?? (rawHtml ? nonBlank(htmlToPlainText(rawHtml)) : undefined);
    // one format, safe to render as HTML: a text part is escaped and laid out, never posted as
    // it came (a text/plain `<img onerror=...>` would be markup to the helpdesk)
    case 'html':
    case 'auto':
      return html ?? (text ? textToHtml(text) : undefined);
  }
}

/**
 * The content of a message whose HTML part is over mapping.maxHtmlBytes: never parsed as HTML
 * (bounded work and memory whatever the markup); its text part, else its text with the tags
 * removed (one linear pass over the first maxHtmlBytes), and a note saying why.
 */
function oversizedHtml(
  html: string,
  text: string | undefined,
  mapping: MappingConfig,
): string {
  const shown = text ?? reducedText(html.slice(0, mapping.maxHtmlBytes));
  const note = `[mailbridge: the HTML part (${html.length} characters) is over mapping.maxHtmlBytes (${mapping.maxHtmlBytes}); ${text ? 'its text part is' : 'its text, without the markup, is'} shown]`;
  return mapping.content === 'text'
    ? `${shown}\n\n${note}`
    : `${textToHtml(shown)}${textToHtml(note)}`;
}

function clean(value: string | undefined): string | undefined {
  return value === undefined ? undefined : cleanHeaderText(value);
}

function cleanAddress(address: MailAddress): MailAddress {
  return {
    address: cleanHeaderText(address.address),
    name: cleanHeaderText(address.name),
  };
}

function nonBlank(value: string | undefined): string | undefined {
  return value?.trim() ? value : undefined;
}

function formatAddress(
  address: MailAddress,
  style: MappingConfig['addressFormat'],
): string {
  if (style === 'address' || !address.name) return address.address;
  const name = /^[\w !#$%&'*+\-/=?^`{|}~.]*$/.test(address.name)
    ? address.name
    : `"${address.name.replace(/["\\]/g, '\\$&')}"`;
  return `${name} <${address.address}>`;
}

function joinAddresses(addresses: string[]): string | undefined {
  return addresses.length ? addresses.join(', ') : undefined;
}

/** Drops undefined, null and empty strings, so the body never carries empty values. */
function withoutEmpty(body: ApiPayload): ApiPayload {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined || value === null || value === '') continue;
    out[key] = value;
  }
  return out as ApiPayload;
}
