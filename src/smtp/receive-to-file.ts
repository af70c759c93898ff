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
}

/** The SMTP data stream: smtp-server flips `sizeExceeded` once the SIZE limit is passed. */
type DataStream = Readable & { sizeExceeded?: boolean };

/**
 * Writes the stream to `path` (created exclusively). Past the size limit the rest is read and
 * dropped, so the client gets its 552 without the excess ever being buffered. On a stream or disk
 * error the partial file is removed and the error rethrown.
 */
export async function receiveToFile(
  stream: DataStream,
  path: string,
): Promise<ReceivedFile> {
  let size = 0;
  let oversized = false;
  const gate = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (stream.sizeExceeded) oversized = true;
      done(null, oversized ? undefined : chunk);
    },
  });
  try {
    await pipeline(stream, gate, createWriteStream(path, { flags: 'wx' }));
  } catch (err) {
    await unlink(path).catch(() => undefined);
    throw err;
  }
  return { path, size, oversized };
}
