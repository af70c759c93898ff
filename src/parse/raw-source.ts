// Where parseMessage's bytes come from: a raw file read at once or streamed, fed to the parser.
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';

/**
 * A raw file up to this size (from `start`) is read in one go and handed to the parser as one
 * Buffer: no read stream, no pipe machinery. Most mail is far smaller; a larger file is streamed,
 * so that memory stays bounded whatever the SMTP size limit.
 */
const SMALL_FILE_BYTES = 256 * 1024;

/**
 * The raw file from `start`, `limit` bytes at most: its bytes when small (one open, stat and
 * read), else a stream of them that owns the open file.
 */
export async function openRaw(
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
export function feed(
  raw: Readable,
  parser: Writable,
  on: {
    chunk: (chunk: Buffer) => void;
    error: (err: Error) => void;
    /** what the parser gets of the first chunk (seen by `chunk` as it came) */
    first?: (chunk: Buffer) => Buffer;
  },
): void {
  let first = on.first;
  raw.on('data', (chunk: Buffer) => {
    on.chunk(chunk);
    const given = first ? first(chunk) : chunk;
    first = undefined;
    if (!parser.write(given)) raw.pause();
  });
  parser.on('drain', () => raw.resume());
  raw.once('end', () => parser.end());
  raw.on('error', (err: Error) => {
    on.error(err);
    parser.destroy(err);
  });
}
