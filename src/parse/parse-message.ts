// Raw message bytes -> ParsedMessage, attachments streamed to files. The ONLY module importing mailparser.
import { createHash, hash as hashOf } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  MailParser,
  type AddressObject,
  type AttachmentStream,
  type Headers,
  type MessageText,
} from 'mailparser';
import { PermanentError } from '../errors/bridge-error.js';
import { AttachmentFiles } from './attachment-files.js';
import {
  rawHeaderValue,
  rawSubjectOf,
  utf8AwareDecoder,
  type BodyDecoder,
} from './charset-choice.js';
import { bareAddressHeaders, repairHeaders } from './header-repair.js';
import { correctedDisposition, type PartHeaders } from './part-disposition.js';
import { repairPart, type ParserNode, type SplitPart } from './part-repair.js';
import { refineParts, type Body } from './refine-parts.js';
import type { ParsedAttachment, ParsedMessage } from './parsed-message.js';
import { toAttachment, toParsedMessage } from './parsed-from-headers.js';
import { feed, openRaw } from './raw-source.js';
import { keepUnreadable, type Structure } from './unreadable.js';
import { storeYencFiles, withoutYenc } from './yenc-files.js';

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
  // HTML larger than this is not converted to text (mailparser's html-to-text is costly, and
  // megabytes of nested tags cost hundreds of MiB): the mapper reduces it (mapping.maxHtmlBytes)
  maxHtmlLengthToParse: 1024 * 1024,
  checksumAlgo: false,
} as const;

/** The part of mailparser's tree node the disposition correction and part repair set. */
interface TreeNode extends ParserNode {
  disposition?: string;
  isAttachment?: boolean;
}

/**
 * MailParser with text parts' dispositions corrected (parse/part-disposition.ts): its internal
 * `createNode`, which reads each part's headers, is wrapped; a mailparser without it fails here,
 * at load, not quietly. And a text part whose charset label cannot be right (UTF-8 bytes under
 * a legacy label) is decoded as UTF-8 (parse/charset-choice.ts): `getDecoder` is mailparser's
 * (internal) factory of body decoders, called by its constructor.
 */
class BridgeParser extends MailParser {
  /** the first legacy charset label of a text part: the fallback of raw 8-bit headers */
  declare textLabel: string | undefined;
  /** what createNode saw: a multipart top level, and the parts below it */
  structure: Structure = { multipart: false, parts: 0 };

  getDecoder(): BodyDecoder {
    const base = (
      MailParser.prototype as unknown as { getDecoder(): BodyDecoder }
    ).getDecoder.call(this);
    return utf8AwareDecoder(base, label => (this.textLabel ??= label));
  }
}
const createNode = (
  MailParser.prototype as unknown as {
    createNode?: (this: MailParser, part: PartHeaders & SplitPart) => TreeNode;
  }
).createNode;
if (typeof createNode !== 'function') {
  throw new Error(
    'mailparser has no createNode(): part-disposition.ts needs updating',
  );
}
Object.defineProperty(BridgeParser.prototype, 'createNode', {
  value(this: BridgeParser, part: PartHeaders & SplitPart): TreeNode {
    const node = createNode.call(this, part);
    if (part.root) {
      this.structure.multipart = /^multipart\//i.test(part.contentType || '');
    } else {
      this.structure.parts++;
    }
    const disposition = correctedDisposition(part);
    if (disposition) {
      node.disposition = disposition;
      node.isAttachment = disposition === 'attachment';
    }
    repairPart(part, node);
    return node;
  },
});

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
  /**
   * Set when parsing the MIME entity of an opaque signed part: signed parts within it are not
   * opened again (one level, whatever the nesting).
   */
  nested?: boolean;
}

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
  // a stream is hashed piece by piece as it is read; bytes in memory, in one call when asked
  const hash = Buffer.isBuffer(input) ? undefined : createHash('sha256');
  const parser = new BridgeParser(PARSER_OPTIONS);
  let headers: Headers = new Map();
  parser.once('headers', (parsed: Headers) => (headers = parsed));
  let bare = new Set<string>();
  let rawSubject: Buffer | undefined;
  parser.once('headerLines', (lines: Array<{ key: string; line: string }>) => {
    bare = bareAddressHeaders(lines);
    rawSubject = rawHeaderValue(lines, 'subject');
  });
  /** an error of the disk or the source, not of the message */
  let localError: Error | undefined;
  /** the attachment being written: a failed parser never ends it, so it is ended for it */
  let writing: Readable | undefined;
  parser.on('error', (err: Error) => writing?.destroy(err));
  let size: number;
  if (Buffer.isBuffer(input)) {
    size = input.length;
    parser.end(repairHeaders(input));
  } else {
    size = 0;
    feed(input, parser, {
      chunk: chunk => {
        hash!.update(chunk);
        size += chunk.length;
      },
      error: err => (localError ??= err),
      first: repairHeaders,
    });
  }
  const attachments: ParsedAttachment[] = [];
  /** messages opened from opaque signed parts: their files go with this message's */
  const opened: ParsedMessage[] = [];
  let text: MessageText | undefined;
  let body: Body = {};
  let yencFiles = false;
  try {
    for await (const data of parser as AsyncIterable<
      AttachmentStream | MessageText
    >) {
      if (data.type === 'text') {
        text = data;
        continue;
      }
      writing = data.content;
      const stored = await files.store(data.content);
      writing = undefined;
      if ('error' in stored) {
        localError ??= stored.error;
        throw stored.error;
      }
      data.release?.();
      attachments.push(toAttachment(data, attachments.length, stored));
    }
    // winmail.dat, calendars, names, signed and encrypted parts, inline images
    const refined = await refineParts(
      attachments,
      {
        ...(typeof text?.html === 'string' && { html: text.html }),
        ...(typeof text?.text === 'string' && { text: text.text }),
      },
      {
        files,
        subjectOf: attachedSubject,
        opened,
        ...(!options.nested && {
          parseEntity: (bytes: Buffer | string) =>
            parseMessage(bytes, nestedOptions(options)),
        }),
      },
    );
    attachments.splice(0, attachments.length, ...refined.attachments);
    body = await keepUnreadable(
      parser.structure,
      Buffer.isBuffer(input) ? input : undefined,
      refined.body,
      attachments,
      files,
    );
    // yEnc blocks of the text, decoded from the raw bytes (a Buffer source) into attachments
    yencFiles =
      Buffer.isBuffer(input) &&
      (await storeYencFiles(input, body.text, files, attachments));
  } catch (err) {
    if (!Buffer.isBuffer(input)) input.destroy();
    parser.destroy();
    await Promise.all([files.dispose(), ...opened.map(m => m.dispose())]);
    // A failing disk is not the message's fault: let it surface as a local (temporary) error.
    if (localError) throw localError;
    // the parser's own words stay with the error: they become the dead reason
    throw new PermanentError(`Message could not be parsed: ${reasonOf(err)}`, {
      cause: err,
    });
  }
  const subject = rawSubjectOf(
    rawSubject,
    (headers.get('content-type') as { params?: Record<string, string> })?.params
      ?.charset ?? parser.textLabel,
  );
  if (subject !== undefined) headers.set('subject', subject);
  const bodyText =
    body.text === undefined ? undefined : withoutYenc(body.text, yencFiles);
  const message = toParsedMessage(
    headers,
    bare,
    { ...body, text: bodyText },
    attachments,
    {
      digest: hash ? hash.digest('hex') : '',
      size,
      dispose: async () => {
        await Promise.all([files.dispose(), ...opened.map(m => m.dispose())]);
      },
    },
  );
  return Buffer.isBuffer(input) ? withLazyDigest(message, input) : message;
}

/**
 * `message` whose digest of `bytes` is computed when first read: only a message without a
 * Message-ID needs it (to-api-payload.ts's generated id), and hashing 100 KiB cost the post
 * thread about 0.1 ms a message. The bytes are kept as long as the message is.
 */
function withLazyDigest(message: ParsedMessage, bytes: Buffer): ParsedMessage {
  let digest: string | undefined;
  return Object.defineProperty(message, 'digest', {
    enumerable: true,
    configurable: true,
    get: () => (digest ??= hashOf('sha256', bytes, 'hex')),
  });
}

/** The options of the MIME entity of an opaque signed part: the same folder, all its bytes. */
function nestedOptions(options: ParseOptions): ParseOptions {
  const { attachmentDir, filePrefix } = options;
  return {
    ...(attachmentDir !== undefined && { attachmentDir }),
    ...(filePrefix !== undefined && { filePrefix }),
    nested: true,
  };
}

/** How much of an attached message is read for its Subject: its header block, mostly. */
const ATTACHED_HEAD_BYTES = 64 * 1024;

/**
 * What names an attached message (a file), read from its first bytes: its decoded Subject;
 * without one, `Message from <its sender's name or address>` (as Delta Chat titles its own).
 */
async function attachedSubject(path: string): Promise<string | undefined> {
  const head = await openRaw(path, 0, ATTACHED_HEAD_BYTES);
  if (!Buffer.isBuffer(head)) {
    head.destroy();
    return undefined;
  }
  const end = /\r?\n\r?\n/.exec(head.toString('latin1'));
  const block = head.subarray(0, end ? end.index : head.length);
  const parser = new MailParser(PARSER_OPTIONS);
  const subject = await new Promise<unknown>(resolve => {
    parser.once('headers', (headers: Headers) => {
      const subject = headers.get('subject');
      if (typeof subject === 'string' && subject.trim()) {
        resolve(subject);
        return;
      }
      const from = (headers.get('from') as AddressObject | undefined)?.value[0];
      const sender = from?.name?.trim() || from?.address?.trim();
      resolve(sender ? `Message from ${sender}` : undefined);
    });
    parser.once('error', () => resolve(undefined));
    parser.once('end', () => resolve(undefined));
    parser.resume();
    parser.end(Buffer.concat([block, Buffer.from('\r\n\r\n')]));
  });
  parser.destroy();
  return typeof subject === 'string' ? subject : undefined;
}

/** The longest parser error kept in the message (and so in a dead reason). */
const REASON_CHARS = 200;

/** The parser's error, on one line and bounded: it may quote the message's bytes. */
function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return line.length > REASON_CHARS
    ? `${line.slice(0, REASON_CHARS)}...`
    : line;
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
