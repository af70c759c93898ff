// Streams the DATA of one message to a file, counting bytes; never holds the message in memory.
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface ReceivedFile {
  path: string;
  /** bytes received, the excess included */
  size: number;
  /** true when the message went over the limit: the file is incomplete and must not be used */
  oversized: boolean;
  /** the raw Message-ID header value (unfolded), if the header block has one */
  messageId: string | null;
}

/** The SMTP data stream: smtp-server flips `sizeExceeded` once the SIZE limit is passed. */
type DataStream = Readable & { sizeExceeded?: boolean };

/** Only this much of the start of a message is kept to find its Message-ID. */
const HEADER_SNIFF_BYTES = 64 * 1024;

/**
 * Writes the stream to `path` (created exclusively; fsynced before it resolves when `durable`).
 * Past the size limit the rest is read and dropped, so the client gets its 552 without the excess
 * being buffered. On a stream or disk error the partial file is removed and the error rethrown.
 */
export async function receiveToFile(
  stream: DataStream,
  path: string,
  options: { durable?: boolean } = {},
): Promise<ReceivedFile> {
  let size = 0;
  let oversized = false;
  const head: Buffer[] = [];
  let headBytes = 0;
  const gate = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (headBytes < HEADER_SNIFF_BYTES) {
        head.push(chunk);
        headBytes += chunk.length;
      }
      if (stream.sizeExceeded) oversized = true;
      done(null, oversized ? undefined : chunk);
    },
  });
  const file = createWriteStream(path, { flags: 'wx', flush: options.durable });
  try {
    await pipeline(stream, gate, file);
  } catch (err) {
    await unlink(path).catch(() => undefined);
    throw err;
  }
  const messageId = findMessageId(
    Buffer.concat(head).subarray(0, HEADER_SNIFF_BYTES),
  );
  return { path, size, oversized, messageId };
}

/** The Message-ID of a header block (the bytes before the first empty line), unfolded. */
export function findMessageId(start: Buffer): string | null {
  const text = start.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const headers = (end >= 0 ? text.slice(0, end) : text).replace(
    /\r?\n[ \t]+/g,
    ' ',
  );
  const match = /^message-id[ \t]*:[ \t]*(.*)$/im.exec(headers);
  const value = match?.[1]?.trim();
  return value ? value : null;
}
