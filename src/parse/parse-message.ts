// Raw message bytes -> ParsedMessage, attachments streamed to files. The ONLY module importing mailparser.
import { createHash, hash as hashOf, randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  MailParser,
  type AddressObject,
  type AttachmentStream,
  type Headers,
  type MessageText,
} from 'mailparser';
import { PermanentError } from '../errors/bridge-error.js';
import { writeFully } from '../lib/durable-fs.js';
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

/**
 * A raw file up to this size (from `start`) is read in one go and handed to the parser as one
 * Buffer: no read stream, no pipe machinery. Most mail is far smaller; a larger file is streamed,
 * so that memory stays bounded whatever the SMTP size limit.
 */
const SMALL_FILE_BYTES = 256 * 1024;

export interface ParseOptions {
  /**
   * The folder the attachment files are written to (e.g. the spool's tmp/); os.tmpdir() by
   * default. Files are named `att-<random>-<n>.bin`, directly in it.
   */
  attachmentDir?: string;
  /**
   * How each attachment file's name begins (`att-` by default); 16 random hex digits follow,
   * drawn with the first attachment. A caller who cannot wait for dispose() (a thread that
   * died) can find the files by it.
   */
  filePrefix?: string;
  /**
   * Where the message begins: the number of bytes to skip first (e.g. a spool file's header
   * line). For a path or a Buffer; a stream must be given already positioned. `size` and
   * `digest` cover only the bytes from here on. 0 by default.
   */
  start?: number;
  /**
   * How many bytes the message has from `start`, for a path or a Buffer that holds more after it
   * (a record of a journal segment); up to the end by default.
   */
  length?: number;
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
  const start = startOf(options, source);
  const length = lengthOf(options, source);
  // a file that cannot be opened or read fails here, before any attachment file exists
  const input =
    typeof source === 'string'
      ? await openRaw(source, start, length)
      : Buffer.isBuffer(source)
        ? source.subarray(start, start + length)
        : source;
  const files = new AttachmentFiles(options.attachmentDir, options.filePrefix);
  // bytes in memory are hashed in one call; a stream, piece by piece as it is read
  const hash = Buffer.isBuffer(input) ? undefined : createHash('sha256');
  let digest: string | undefined;
  const parser = new MailParser(PARSER_OPTIONS);
  let headers: Headers = new Map();
  parser.once('headers', (parsed: Headers) => (headers = parsed));
  /** an error of the disk or the source, not of the message */
  let localError: Error | undefined;
  /** the attachment being written: a failed parser never ends it, so it is ended for it */
  let writing: Readable | undefined;
  parser.on('error', (err: Error) => writing?.destroy(err));
  let size: number;
  if (Buffer.isBuffer(input)) {
    digest = hashOf('sha256', input, 'hex');
    size = input.length;
    parser.end(input);
  } else {
    size = 0;
    feed(input, parser, {
      chunk: chunk => {
        hash!.update(chunk);
        size += chunk.length;
      },
      error: err => (localError ??= err),
    });
  }
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
      writing = data.content;
      const stored = await files.store(data.content, attachments.length);
      writing = undefined;
      if ('error' in stored) {
        localError ??= stored.error;
        throw stored.error;
      }
      data.release?.();
      attachments.push(toAttachment(data, attachments.length, stored));
    }
  } catch (err) {
    if (!Buffer.isBuffer(input)) input.destroy();
    parser.destroy();
    await files.dispose();
    // A failing disk is not the message's fault: let it surface as a local (temporary) error.
    if (localError) throw localError;
    throw new PermanentError('Message could not be parsed', { cause: err });
  }
  return toParsedMessage(headers, text, attachments, {
    digest: digest ?? hash!.digest('hex'),
    size,
    dispose: () => files.dispose(),
  });
}

/** `options.start`, checked: a whole number of bytes, and only where bytes can be skipped. */
function startOf(
  options: ParseOptions,
  source: string | Buffer | Readable,
): number {
  const start = options.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new RangeError(`start must be a byte offset, got ${start}`);
  }
  if (start > 0 && typeof source !== 'string' && !Buffer.isBuffer(source)) {
    throw new TypeError('start applies to a path or a Buffer, not a stream');
  }
  return start;
}

/** `options.length`, checked: a whole number of bytes, for a path or a Buffer. */
function lengthOf(
  options: ParseOptions,
  source: string | Buffer | Readable,
): number {
  const { length } = options;
  if (length === undefined) return Infinity;
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`length must be a byte count, got ${length}`);
  }
  if (typeof source !== 'string' && !Buffer.isBuffer(source)) {
    throw new TypeError('length applies to a path or a Buffer, not a stream');
  }
  return length;
}

/**
 * The raw file from `start`, `limit` bytes at most: its bytes when small (one open, stat and
 * read), else a stream of them that owns the open file.
 */
async function openRaw(
  path: string,
  start: number,
  limit: number,
): Promise<Buffer | Readable> {
  const handle = await open(path, 'r');
  let handedOver = false;
  try {
    const length = Math.min(
      limit,
      Math.max(0, (await handle.stat()).size - start),
    );
    if (length <= SMALL_FILE_BYTES) return await readAt(handle, length, start);
    handedOver = true;
    return handle.createReadStream({ start, end: start + length - 1 });
  } finally {
    if (!handedOver) await handle.close();
  }
}

/** Up to `length` bytes at `position`; fewer when the file ends sooner. */
async function readAt(
  handle: FileHandle,
  length: number,
  position: number,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(
      buffer,
      filled,
      length - filled,
      position + filled,
    );
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/**
 * Pipes `raw` into the parser by hand, each chunk seen by `on.chunk` first. stream/promises'
 * pipeline() would cost an AbortController and a DOMException per message. A source error
 * goes to `on.error` and fails the parser with it, which ends the parse.
 */
function feed(
  raw: Readable,
  parser: MailParser,
  on: { chunk: (chunk: Buffer) => void; error: (err: Error) => void },
): void {
  raw.on('data', (chunk: Buffer) => {
    on.chunk(chunk);
    if (!parser.write(chunk)) raw.pause();
  });
  parser.on('drain', () => raw.resume());
  raw.once('end', () => parser.end());
  raw.on('error', (err: Error) => {
    on.error(err);
    parser.destroy(err);
  });
}

/** The attachment files of one message: written one by one, removed together. */
class AttachmentFiles {
  private readonly paths: string[] = [];

  constructor(
    private readonly dir?: string,
    /** how names begin; random digits are added with the first attachment (most have none) */
    private readonly namePrefix = 'att-',
  ) {}

  private prefix?: string;

  /**
   * Writes one attachment's content to a new file. An error of the file (opening, writing) is
   * returned; an error of the content (bad encoding, a failed parser) is thrown.
   */
  async store(
    content: Readable,
    index: number,
  ): Promise<{ path: string; size: number } | { error: Error }> {
    this.prefix ??= `${this.namePrefix}${randomBytes(8).toString('hex')}`;
    const path = join(this.dir ?? tmpdir(), `${this.prefix}-${index + 1}.bin`);
    this.paths.push(path);
    let file: FileHandle;
    try {
      file = await open(path, 'wx');
    } catch (err) {
      return { error: err as Error };
    }
    let size = 0;
    try {
      for await (const chunk of content as AsyncIterable<Buffer>) {
        try {
          await writeFully(file, [chunk]);
        } catch (err) {
          return { error: err as Error };
        }
        size += chunk.length;
      }
    } finally {
      // leaving the loop early (an error, a return) has destroyed the content stream
      await file.close();
    }
    return { path, size };
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
