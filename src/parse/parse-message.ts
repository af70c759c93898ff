// Raw message bytes -> ParsedMessage, attachments streamed to files. The ONLY module importing mailparser.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  MailParser,
  type AddressObject,
  type AttachmentStream,
  type Headers,
  type MessageText,
} from 'mailparser';
import { PermanentError } from '../errors/bridge-error.js';
import type {
  MailAddress,
  ParsedAttachment,
  ParsedMessage,
} from './parsed-message.js';

/**
 * Caps for hostile input; the size limit of SMTP already bounds the whole message. `cid:` links
 * stay as they are (simpleParser's `keepCidLinks`): only `updateImageLinks()` would inline them
 * as data: URLs, a second copy of every image, and we never call it.
 */
const PARSER_OPTIONS = {
  // Attached messages stay attachments instead of being merged into the text.
  ignoreEmbedded: true,
  // We never use textAsHtml or link detection; skipping them saves much CPU per message.
  skipTextToHtml: true,
  skipTextLinks: true,
  skipImageLinks: true,
  // HTML larger than this is not converted to text (mailparser's html-to-text is costly).
  maxHtmlLengthToParse: 10 * 1024 * 1024,
  checksumAlgo: false,
} as const;

export interface ParseOptions {
  /**
   * The folder the attachment files are written to (e.g. the spool's tmp/); os.tmpdir() by
   * default. Files are named `att-<random>-<n>.bin`, directly in it.
   */
  attachmentDir?: string;
}

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
 * would decode it twice). Each attachment's decoded bytes go to a file of their own under
 * `options.attachmentDir`; the message's `dispose()` removes them. Throws PermanentError when
 * the bytes cannot be parsed at all, and a reading or writing error as it is (a local fault);
 * in both cases no attachment file is left behind.
 */
export async function parseMessage(
  source: string | Buffer | Readable,
  options: ParseOptions = {},
): Promise<ParsedMessage> {
  const files = new AttachmentFiles(options.attachmentDir ?? tmpdir());
  const hash = createHash('sha256');
  let size = 0;
  const raw =
    typeof source === 'string'
      ? createReadStream(source)
      : Buffer.isBuffer(source)
        ? Readable.from([source], { objectMode: false })
        : source;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  /** an error of the disk or the source, not of the message */
  let localError: Error | undefined;
  raw.once('error', (err: Error) => (localError ??= err));
  const parser = new MailParser(PARSER_OPTIONS);
  let headers: Headers = new Map();
  parser.once('headers', (parsed: Headers) => (headers = parsed));
  // resolves once the parser has taken the whole input (its writable side finished)
  const feeding = pipeline(raw, tap, parser);
  // a failed parser never ends the attachment stream it is in: stop writing that one
  const failed = new AbortController();
  feeding.catch((err: unknown) => failed.abort(err));
  const attachments: ParsedAttachment[] = [];
  let text: MessageText | undefined;
  try {
    for await (const data of parser as AsyncIterable<
      AttachmentStream | MessageText
    >) {
      if (data.type === 'text') {
        text = data;
        continue;
      }
      const stored = await files.store(
        data.content,
        attachments.length,
        failed.signal,
      );
      if ('error' in stored) {
        localError ??= stored.error;
        throw stored.error;
      }
      data.release?.();
      attachments.push(toAttachment(data, attachments.length, stored));
    }
    await feeding;
  } catch (err) {
    parser.destroy();
    await files.dispose();
    // A failing disk is not the message's fault: let it surface as a local (temporary) error.
    if (localError) throw localError;
    throw new PermanentError('Message could not be parsed', { cause: err });
  }
  return toParsedMessage(headers, text, attachments, {
    digest: hash.digest('hex'),
    size,
    dispose: () => files.dispose(),
  });
}

/** The attachment files of one message: written one by one, removed together. */
class AttachmentFiles {
  private readonly prefix = `att-${randomBytes(8).toString('hex')}`;
  private readonly paths: string[] = [];

  constructor(private readonly dir: string) {}

  /** Writes one attachment's content to a new file; a write error is returned, not thrown. */
  async store(
    content: Readable,
    index: number,
    signal: AbortSignal,
  ): Promise<{ path: string; size: number } | { error: Error }> {
    const path = join(this.dir, `${this.prefix}-${index + 1}.bin`);
    this.paths.push(path);
    const file = createWriteStream(path, { flags: 'wx' });
    let writeError: Error | undefined;
    file.once('error', (err: Error) => (writeError = err));
    try {
      await pipeline(content, file, { signal });
    } catch (err) {
      // an error of the content stream is the message's (bad encoding): the caller rethrows it
      if (writeError) return { error: writeError };
      throw err;
    }
    return { path, size: file.bytesWritten };
  }

  /** Removes every file written so far; never rejects. */
  async dispose(): Promise<void> {
    const paths = this.paths.splice(0);
    await Promise.all(
      paths.map(path => rm(path, { force: true }).catch(() => undefined)),
    );
  }
}

function toParsedMessage(
  headers: Headers,
  text: MessageText | undefined,
  attachments: ParsedAttachment[],
  raw: Pick<ParsedMessage, 'digest' | 'size' | 'dispose'>,
): ParsedMessage {
  const priority = headers.get('priority');
  const from = headers.get('from') as AddressObject | undefined;
  const subject = headers.get('subject');
  return {
    from: addresses(from)[0],
    to: addresses(headers.get('to') as AddressObject | AddressObject[]),
    cc: addresses(headers.get('cc') as AddressObject | AddressObject[]),
    subject: typeof subject === 'string' ? subject : undefined,
    text: text?.text,
    html: typeof text?.html === 'string' ? text.html : undefined,
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

function toAttachment(
  attachment: AttachmentStream,
  index: number,
  stored: { path: string; size: number },
): ParsedAttachment {
  const contentType = (attachment.contentType || 'application/octet-stream')
    .toLowerCase()
    .trim();
  return {
    filename:
      safeFilename(attachment.filename) ??
      `attachment-${index + 1}.${EXTENSIONS[contentType] ?? 'bin'}`,
    contentType,
    path: stored.path,
    size: stored.size,
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
