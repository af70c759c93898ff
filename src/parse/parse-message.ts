// Raw message bytes -> ParsedMessage. The ONLY module that imports mailparser.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import {
  simpleParser,
  type AddressObject,
  type Attachment,
  type ParsedMail,
} from 'mailparser';
import { PermanentError } from '../errors/bridge-error.js';
import type {
  MailAddress,
  ParsedAttachment,
  ParsedMessage,
} from './parsed-message.js';

/** Caps for hostile input; the size limit of SMTP already bounds the whole message. */
const PARSER_OPTIONS = {
  // Attached messages stay attachments instead of being merged into the text.
  ignoreEmbedded: true,
  // cid: links stay as they are: inlining them as data: URLs would copy every image again.
  keepCidLinks: true,
  // We never use textAsHtml or link detection; skipping them saves much CPU per message.
  skipTextToHtml: true,
  skipTextLinks: true,
  skipImageLinks: true,
  // HTML larger than this is not converted to text (mailparser's html-to-text is costly).
  maxHtmlLengthToParse: 10 * 1024 * 1024,
  checksumAlgo: false,
} as const;

/** File extensions for generated attachment names; anything else gets `.bin`. */
const EXTENSIONS: Record<string, string> = {
  'application/pdf': 'pdf',
  'application/zip': 'zip',
  'application/json': 'json',
  'application/xml': 'xml',
  'application/ms-tnef': 'dat',
  'application/pgp-signature': 'asc',
  'application/pgp-encrypted': 'asc',
  'application/pkcs7-signature': 'p7s',
  'application/x-pkcs7-signature': 'p7s',
  'application/pkcs7-mime': 'p7m',
  'application/x-pkcs7-mime': 'p7m',
  'application/msword': 'doc',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document':
    'docx',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'image/svg+xml': 'svg',
  'image/bmp': 'bmp',
  'image/tiff': 'tif',
  'text/plain': 'txt',
  'text/html': 'html',
  'text/calendar': 'ics',
  'text/csv': 'csv',
  'text/rfc822-headers': 'txt',
  'message/rfc822': 'eml',
  'message/global': 'eml',
  'message/delivery-status': 'txt',
  'message/disposition-notification': 'txt',
  'audio/mpeg': 'mp3',
  'video/mp4': 'mp4',
};

/**
 * Parses a raw message given as a file path, bytes or a byte stream (never a string: mailparser
 * would decode it twice). Throws PermanentError when the bytes cannot be parsed at all.
 */
export async function parseMessage(
  source: string | Buffer | Readable,
): Promise<ParsedMessage> {
  const hash = createHash('sha256');
  let size = 0;
  let input: Buffer | Readable;
  let readError: Error | undefined;
  if (Buffer.isBuffer(source)) {
    hash.update(source);
    size = source.length;
    input = source;
  } else {
    const raw = typeof source === 'string' ? createReadStream(source) : source;
    const tap = new PassThrough();
    tap.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
    });
    raw.on('error', (err: Error) => {
      readError = err;
      tap.destroy(err);
    });
    input = raw.pipe(tap);
  }
  let mail: ParsedMail;
  try {
    mail = await simpleParser(input, PARSER_OPTIONS);
  } catch (err) {
    // A failing disk is not the message's fault: let it surface as a local (temporary) error.
    if (readError) throw readError;
    throw new PermanentError('Message could not be parsed', { cause: err });
  }
  return toParsedMessage(mail, hash.digest('hex'), size);
}

function toParsedMessage(
  mail: ParsedMail,
  digest: string,
  size: number,
): ParsedMessage {
  const priority = mail.headers.get('priority');
  return {
    from: addresses(mail.from)[0],
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    subject: mail.subject,
    text: mail.text,
    html: typeof mail.html === 'string' ? mail.html : undefined,
    messageId: headerText(mail.headers.get('message-id')) ?? mail.messageId,
    inReplyTo: headerText(mail.headers.get('in-reply-to')) ?? mail.inReplyTo,
    references: referenceList(mail.references),
    priority: priority === 'high' || priority === 'low' ? priority : 'normal',
    attachments: mail.attachments.map(toAttachment),
    digest,
    size,
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

function addresses(
  field: AddressObject | AddressObject[] | undefined,
): MailAddress[] {
  if (!field) return [];
  const objects = Array.isArray(field) ? field : [field];
  const flatten = (entry: AddressEntry): AddressEntry[] =>
    entry.group ? entry.group.flatMap(flatten) : [entry];
  return objects
    .flatMap(object => object.value.flatMap(flatten))
    .filter(entry => Boolean(entry.address))
    .map(entry => ({ address: entry.address ?? '', name: entry.name ?? '' }));
}

function toAttachment(attachment: Attachment, index: number): ParsedAttachment {
  const contentType = (attachment.contentType || 'application/octet-stream')
    .toLowerCase()
    .trim();
  return {
    filename:
      safeFilename(attachment.filename) ??
      `attachment-${index + 1}.${EXTENSIONS[contentType] ?? 'bin'}`,
    contentType,
    content: attachment.content,
    contentId: attachment.cid,
  };
}

/** Keeps the last path segment and drops control characters; null when nothing is left. */
function safeFilename(name: string | null | undefined): string | null {
  if (!name) return null;
  const base = name
    .split(/[\\/]/)
    .pop()
    // eslint-disable-next-line no-control-regex -- control characters are exactly what we strip
    ?.replace(/[\u0000-\u001f\u007f]/g, '')
    .trim();
  return base && base !== '.' && base !== '..' ? base : null;
}
