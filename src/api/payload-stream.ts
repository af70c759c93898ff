// ApiPayload -> its JSON as a byte stream: attachments are base64-encoded from their files.
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ApiPayload, AttachmentFile } from '../map/api-payload.js';

/** The stream hands out pieces of at least this size (but the last). */
const PIECE_BYTES = 64 * 1024;
/**
 * Bytes of an attachment read at a time: a multiple of 3, so no base64 padding mid-stream. Its
 * 64 KiB of base64 stays a young V8 string (freed cheaply); 192 KiB reads made each a large
 * object, freed only by a full GC, and the daemon's peak RSS grew ~10 MiB more per 20 MiB.
 */
const READ_BYTES = 48 * 1024;

export interface SerializeOptions {
  /** like the `space` of JSON.stringify: spaces per level, none by default */
  indent?: number;
}

/** The JSON of one body: its exact length, and a fresh stream of its bytes per call. */
export interface SerializedPayload {
  /** bytes of JSON (UTF-8), exact: usable as Content-Length */
  readonly length: number;
  /** A new stream each call (a stream cannot be replayed): one per POST attempt. */
  stream(): Readable;
  /**
   * The whole body as one new Buffer, the same bytes as stream(), when it needs no attachment
   * file; null when it does (those are only ever streamed). For small bodies, which cost less
   * posted whole than through stream machinery.
   */
  toBuffer(): Buffer | null;
}

/**
 * Literal JSON text (as a string, or as its UTF-8 bytes), or an attachment file to be written as
 * base64 (without its quotes).
 */
type Part = string | Buffer | AttachmentFile;

/**
 * Up to this many characters of JSON text in all, a body keeps the text's bytes instead of the
 * text. A body waits in its POST, often through young-generation collections: a string would be
 * copied and promoted to the old generation (a 106 KB JSON text for each 100 KiB message, a third
 * of what the post thread promoted), while the bytes live outside V8's heap and the string dies
 * young. A larger text stays a string, encoded piece by piece as it is streamed: its bytes
 * would be a second copy as large as the body.
 */
const TEXT_KEPT_AS_BYTES = 1024 * 1024;

/** The base64 length of `size` bytes. */
export function base64Length(size: number): number {
  return 4 * Math.ceil(size / 3);
}

/**
 * Serialises `payload` to the JSON that JSON.stringify(payload, null, indent) would give if each
 * attachment's `file` held the base64 of its file's bytes. Only `attachments[i].file` is read
 * from disk, lazily and in chunks; every other value goes through JSON.stringify.
 */
export function serializePayload(
  payload: ApiPayload,
  options: SerializeOptions = {},
): SerializedPayload {
  const gap = ' '.repeat(Math.min(10, Math.max(0, options.indent ?? 0)));
  // fit-body.ts measures a body and the POST then sends it: one serialisation for both (a
  // payload is never changed once mapped; fitting makes new ones)
  if (gap !== '') return serialized(payload, gap);
  let made = compact.get(payload);
  if (!made) compact.set(payload, (made = serialized(payload, gap)));
  return made;
}

/** The last compact serialisations, by payload (a payload's JSON is 2 to 3 times its text). */
const compact = new WeakMap<ApiPayload, SerializedPayload>();

function serialized(payload: ApiPayload, gap: string): SerializedPayload {
  const texts = toParts(payload, gap);
  const textLength = texts.reduce<number>(
    (sum, part) => sum + (typeof part === 'string' ? part.length : 0),
    0,
  );
  const parts =
    textLength <= TEXT_KEPT_AS_BYTES
      ? texts.map(part =>
          typeof part === 'string' ? Buffer.from(part, 'utf8') : part,
        )
      : texts;
  const length = parts.reduce<number>(
    (sum, part) =>
      sum +
      (typeof part === 'string'
        ? Buffer.byteLength(part)
        : Buffer.isBuffer(part)
          ? part.length
          : base64Length(part.size)),
    0,
  );
  return {
    length,
    stream: () => Readable.from(pieces(parts), { objectMode: false }),
    // always a new Buffer (Buffer.concat copies): the caller may hand it to another thread
    toBuffer: () =>
      parts.every(part => typeof part === 'string' || Buffer.isBuffer(part))
        ? Buffer.concat(parts.map(bytesOf), length)
        : null,
  };
}

/** A text part's bytes. */
function bytesOf(part: string | Buffer): Buffer {
  return typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
}

/**
 * The same JSON as one string, for small uses (tests, previews of small messages): reads the
 * stream, so it is byte for byte what is posted.
 */
export async function payloadToString(
  payload: ApiPayload,
  options: SerializeOptions = {},
): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of serializePayload(payload, options).stream()) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Writes a value at nesting `indent`: JSON text and attachment files. */
type Writer = (out: PartList, indent: string) => void;

class PartList {
  readonly parts: Part[] = [];
  private text = '';

  add(text: string): void {
    this.text += text;
  }

  file(file: AttachmentFile): void {
    this.parts.push(this.text, { path: file.path, size: file.size });
    this.text = '';
  }

  done(): Part[] {
    this.parts.push(this.text);
    return this.parts.filter(part => part !== '');
  }
}

function toParts(payload: ApiPayload, gap: string): Part[] {
  // most bodies have no attachment file: then they are JSON.stringify's text, made in one call
  if (!hasFiles(payload.attachments)) {
    return [JSON.stringify(payload, null, gap)];
  }
  const out = new PartList();
  const entries = Object.entries(payload).map(
    ([key, value]): [string, Writer | undefined] => [
      key,
      key === 'attachments' && hasFiles(value)
        ? array(value.map(attachmentWriter(gap)), gap)
        : plain(value, gap),
    ],
  );
  object(entries, gap)(out, '');
  return out.done();
}

/** `value` is the mapper's attachment list: objects whose `file` is an AttachmentFile. */
function hasFiles(value: unknown): value is Array<Record<string, unknown>> {
  return (
    Array.isArray(value) &&
    value.some(
      item => typeof item === 'object' && item !== null && isFile(item.file),
    )
  );
}

function isFile(value: unknown): value is AttachmentFile {
  if (typeof value !== 'object' || value === null) return false;
  const { path, size } = value as Record<string, unknown>;
  return typeof path === 'string' && typeof size === 'number' && size >= 0;
}

function attachmentWriter(gap: string) {
  return (item: unknown): Writer | undefined => {
    if (
      typeof item !== 'object' ||
      item === null ||
      !isFile((item as Record<string, unknown>).file)
    ) {
      return plain(item, gap);
    }
    const entries = Object.entries(item).map(
      ([key, value]): [string, Writer | undefined] => [
        key,
        key === 'file' && isFile(value)
          ? out => {
              out.add('"');
              out.file(value);
              out.add('"');
            }
          : plain(value, gap),
      ],
    );
    return object(entries, gap);
  };
}

/** JSON.stringify's text of a value, re-indented to its depth; undefined when JSON omits it. */
function plain(value: unknown, gap: string): Writer | undefined {
  const json = JSON.stringify(value, null, gap) as string | undefined;
  if (json === undefined) return undefined;
  return (out, indent) =>
    out.add(indent && gap ? json.replaceAll('\n', `\n${indent}`) : json);
}

/** An object as JSON.stringify lays it out; entries without a writer are left out. */
function object(entries: Array<[string, Writer | undefined]>, gap: string) {
  const items = entries.flatMap(([key, write]): Writer[] =>
    write
      ? [
          (out, indent) => {
            out.add(`${JSON.stringify(key)}:${gap ? ' ' : ''}`);
            write(out, indent);
          },
        ]
      : [],
  );
  return container('{', '}', items, gap);
}

/** An array as JSON.stringify lays it out; an omitted value becomes null. */
function array(items: Array<Writer | undefined>, gap: string): Writer {
  return container(
    '[',
    ']',
    items.map(write => write ?? (out => out.add('null'))),
    gap,
  );
}

function container(
  open: string,
  close: string,
  items: Writer[],
  gap: string,
): Writer {
  return (out, indent) => {
    if (items.length === 0) {
      out.add(open + close);
      return;
    }
    const inner = indent + gap;
    out.add(open);
    items.forEach((write, i) => {
      if (i > 0) out.add(',');
      if (gap) out.add(`\n${inner}`);
      write(out, inner);
    });
    if (gap) out.add(`\n${indent}`);
    out.add(close);
  };
}

/** The parts as bytes, gathered into pieces of at least PIECE_BYTES. */
async function* pieces(parts: Part[]): AsyncGenerator<Buffer> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  function* take(chunk: Buffer): Generator<Buffer> {
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes < PIECE_BYTES) return;
    yield held.length === 1 ? chunk : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
  }
  for (const part of parts) {
    if (typeof part === 'string' || Buffer.isBuffer(part)) {
      yield* take(bytesOf(part));
    } else {
      for await (const chunk of base64Of(part)) yield* take(chunk);
    }
  }
  if (heldBytes > 0) yield Buffer.concat(held, heldBytes);
}

/**
 * The base64 of a file, read READ_BYTES at a time. Fails when the file does not hold exactly
 * `size` bytes: the announced length would be wrong.
 */
async function* base64Of(file: AttachmentFile): AsyncGenerator<Buffer> {
  const handle = await open(file.path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    let total = 0;
    for (;;) {
      // fill the whole buffer, so that every chunk but the last is a multiple of 3 bytes
      let filled = 0;
      while (filled < READ_BYTES) {
        const { bytesRead } = await handle.read(
          buffer,
          filled,
          READ_BYTES - filled,
          null,
        );
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      total += filled;
      if (total > file.size) break;
      if (filled > 0) {
        yield Buffer.from(buffer.toString('base64', 0, filled), 'latin1');
      }
      if (filled < READ_BYTES) break;
    }
    if (total !== file.size) {
      throw new Error(
        `attachment file ${file.path} holds ${total > file.size ? `more than ${file.size}` : total} bytes, expected ${file.size}`,
      );
    }
  } finally {
    await handle.close();
  }
}
