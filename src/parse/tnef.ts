// PURE: a TNEF stream (winmail.dat, application/ms-tnef) decoded into its files and its body.
// [MS-OXTNEF]: a signature, a key, then attributes; MAPI properties per [MS-OXCDATA].
import { decompressRtf, htmlFromRtf } from './rtf.js';

export const TNEF_SIGNATURE = 0x223e9f78;

/** A file a TNEF stream carries: its name (as the sender's client gave it) and its bytes. */
export interface TnefFile {
  name?: string;
  /** the MIME type the sender's client recorded (PR_ATTACH_MIME_TAG), if any */
  contentType?: string;
  contentId?: string;
  data: Buffer;
}

export interface TnefContent {
  files: TnefFile[];
  /** the message's HTML body (PR_HTML, or HTML encapsulated in its compressed RTF) */
  html?: string;
  /** the message's plain text body (attBody or PR_BODY) */
  text?: string;
  /** its compressed RTF body when that holds no HTML (an RTF document) */
  rtf?: Buffer;
}

/** A file being read: an attached message is unpacked when the stream ends. */
interface PendingFile extends TnefFile {
  embedded?: TnefContent;
}

const LEVEL_ATTACHMENT = 0x02;

// attribute ids (the low word; the high word is the type)
const ATT_BODY = 0x800c;
const ATT_ATTACH_DATA = 0x800f;
const ATT_ATTACH_TITLE = 0x8010;
const ATT_ATTACH_REND_DATA = 0x9002;
const ATT_MSG_PROPS = 0x9003;
const ATT_ATTACHMENT = 0x9005;

// MAPI property ids
const PR_BODY = 0x1000;
const PR_RTF_COMPRESSED = 0x1009;
const PR_HTML = 0x1013;
const PR_ATTACH_DATA = 0x3701;
const PR_ATTACH_LONG_FILENAME = 0x3707;
const PR_ATTACH_FILENAME = 0x3704;
const PR_DISPLAY_NAME = 0x3001;
const PR_ATTACH_MIME_TAG = 0x370e;
const PR_ATTACH_CONTENT_ID = 0x3712;

/** Whether the bytes begin like a TNEF stream. */
export function isTnef(bytes: Buffer): boolean {
  return bytes.length >= 6 && bytes.readUInt32LE(0) === TNEF_SIGNATURE;
}

/**
 * Decodes a TNEF stream. Throws a RangeError on a stream cut short or not TNEF; a checksum that
 * does not match is ignored (clients get it wrong; the lengths are what matter).
 */
export function decodeTnef(bytes: Buffer, depth = 0): TnefContent {
  if (!isTnef(bytes)) throw new RangeError('not a TNEF stream');
  const content: TnefContent = { files: [] };
  const files: PendingFile[] = [];
  let file: PendingFile | undefined;
  let offset = 6;
  while (offset + 9 <= bytes.length) {
    const level = bytes[offset]!;
    const id = bytes.readUInt32LE(offset + 1) & 0xffff;
    const length = bytes.readUInt32LE(offset + 5);
    const start = offset + 9;
    const end = start + length;
    if (end + 2 > bytes.length) throw new RangeError('TNEF stream cut short');
    const data = bytes.subarray(start, end);
    offset = end + 2;
    if (id === ATT_ATTACH_REND_DATA) {
      file = { data: Buffer.alloc(0) };
      files.push(file);
    } else if (level === LEVEL_ATTACHMENT && file) {
      attachmentAttribute(file, id, data, depth);
    } else if (id === ATT_BODY) {
      content.text ??= latin1String(data);
    } else if (id === ATT_MSG_PROPS) {
      messageProperties(content, readProperties(data));
    }
  }
  content.files = files.flatMap(f =>
    f.embedded ? embeddedFiles(f.name, f.embedded) : f.data.length ? [f] : [],
  );
  return content;
}

/** How deep attached messages are unpacked within one TNEF stream. */
const MAX_DEPTH = 4;

/**
 * An attached message (a TNEF stream of its own): its body as a file named after it (`.html`,
 * `.txt` or `.rtf`), then its files.
 */
function embeddedFiles(
  name: string | undefined,
  message: TnefContent,
): TnefFile[] {
  const title = name?.trim() || 'message';
  const body: TnefFile[] =
    message.html !== undefined
      ? [
          {
            name: `${title}.html`,
            contentType: 'text/html',
            data: Buffer.from(message.html),
          },
        ]
      : message.rtf
        ? [
            {
              name: `${title}.rtf`,
              contentType: 'application/rtf',
              data: message.rtf,
            },
          ]
        : message.text
          ? [
              {
                name: `${title}.txt`,
                contentType: 'text/plain',
                data: Buffer.from(message.text),
              },
            ]
          : [];
  return [...body, ...message.files];
}

function attachmentAttribute(
  file: PendingFile,
  id: number,
  data: Buffer,
  depth: number,
): void {
  if (id === ATT_ATTACH_DATA) file.data = data;
  else if (id === ATT_ATTACH_TITLE) file.name ??= latin1String(data);
  else if (id === ATT_ATTACHMENT) {
    const props = readProperties(data);
    const name =
      props.get(PR_ATTACH_LONG_FILENAME) ??
      props.get(PR_ATTACH_FILENAME) ??
      props.get(PR_DISPLAY_NAME);
    if (typeof name === 'string' && name) file.name = name;
    const type = props.get(PR_ATTACH_MIME_TAG);
    if (typeof type === 'string' && type) file.contentType = type;
    const cid = props.get(PR_ATTACH_CONTENT_ID);
    if (typeof cid === 'string' && cid) file.contentId = cid;
    const object = props.get(PR_ATTACH_DATA);
    // an attached message: a TNEF stream of its own (its attAttachData is only a notice)
    if (Buffer.isBuffer(object) && isTnef(object) && depth < MAX_DEPTH) {
      file.embedded = decodeTnef(object, depth + 1);
    } else if (Buffer.isBuffer(object) && file.data.length === 0) {
      // an attachment's bytes as a property (PT_OBJECT: a 16-byte IID first)
      file.data = object;
    }
  }
}

function messageProperties(
  content: TnefContent,
  props: Map<number, string | Buffer>,
): void {
  const html = props.get(PR_HTML);
  if (html !== undefined) {
    content.html = Buffer.isBuffer(html) ? decodeHtml(html) : html;
  }
  const body = props.get(PR_BODY);
  if (typeof body === 'string' && body.trim()) content.text = body;
  const rtf = props.get(PR_RTF_COMPRESSED);
  if (Buffer.isBuffer(rtf) && content.html === undefined) {
    try {
      const document = decompressRtf(rtf);
      const fromRtf = htmlFromRtf(document);
      if (fromRtf !== undefined) content.html = fromRtf;
      else content.rtf = document;
    } catch {
      // a broken RTF body: the text body, if any, stands
    }
  }
}

/** HTML bytes in the charset its <meta> names (UTF-8 when none, or one unknown). */
export function decodeHtml(bytes: Buffer): string {
  const head = bytes.subarray(0, 2048).toString('latin1');
  const charset = /<meta\b[^>]*charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1];
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** A string attribute (8-bit, NUL-terminated). */
function latin1String(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.subarray(0, nul < 0 ? data.length : nul).toString('latin1');
}

// MAPI property types
const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MV_FLAG = 0x1000;
const FIXED_SIZES: Record<number, number> = {
  0x0001: 4, // PT_NULL
  0x0002: 4, // PT_SHORT, padded
  0x0003: 4, // PT_LONG
  0x0004: 4, // PT_FLOAT
  0x0005: 8, // PT_DOUBLE
  0x0006: 8, // PT_CURRENCY
  0x0007: 8, // PT_APPTIME
  0x000a: 4, // PT_ERROR
  0x000b: 4, // PT_BOOLEAN, padded
  0x0014: 8, // PT_I8
  0x0040: 8, // PT_SYSTIME
  0x0048: 16, // PT_CLSID
};

/**
 * A MAPI property list: the first value of each string, binary or object property by its id
 * (named properties, id 0x8000 and above, are skipped over). Stops at a type it cannot size.
 */
export function readProperties(data: Buffer): Map<number, string | Buffer> {
  const props = new Map<number, string | Buffer>();
  const reader = new Reader(data);
  const count = reader.u32();
  for (let i = 0; i < count && reader.left() >= 4; i++) {
    const type = reader.u16();
    const id = reader.u16();
    if (id >= 0x8000) {
      reader.skip(16); // the property set's GUID
      const kind = reader.u32();
      reader.skip(kind === 0 ? 4 : pad4(reader.u32()));
    }
    const base = type & ~MV_FLAG;
    const variable = [PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT].includes(
      base,
    );
    if (!variable) {
      const size = FIXED_SIZES[base];
      if (size === undefined) break;
      const values = type & MV_FLAG ? reader.u32() : 1;
      reader.skip(values * size);
      continue;
    }
    const values = reader.u32();
    for (let v = 0; v < values; v++) {
      const bytes = reader.bytes(reader.u32());
      if (v > 0 || props.has(id)) continue;
      props.set(id, propertyValue(base, bytes));
    }
  }
  return props;
}

function propertyValue(type: number, bytes: Buffer): string | Buffer {
  const trimmed = (text: string) => text.replace(/\0+$/, '');
  if (type === PT_UNICODE) return trimmed(bytes.toString('utf16le'));
  if (type === PT_STRING8) return trimmed(bytes.toString('latin1'));
  if (type === PT_OBJECT) return bytes.subarray(16);
  return bytes;
}

const pad4 = (n: number) => (n + 3) & ~3;

/** Little-endian reads that throw a RangeError past the end. */
class Reader {
  private offset = 0;
  constructor(private readonly data: Buffer) {}
  left(): number {
    return this.data.length - this.offset;
  }
  u16(): number {
    const value = this.data.readUInt16LE(this.offset);
    this.offset += 2;
    return value;
  }
  u32(): number {
    const value = this.data.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }
  skip(n: number): void {
    if (n > this.left()) throw new RangeError('MAPI properties cut short');
    this.offset += n;
  }
  /** `n` bytes, then the padding to a multiple of 4. */
  bytes(n: number): Buffer {
    if (n > this.left()) throw new RangeError('MAPI properties cut short');
    const value = this.data.subarray(this.offset, this.offset + n);
    this.offset = Math.min(this.offset + pad4(n), this.data.length);
    return value;
  }
}
