// The DATA phase's reader: smtp-server's own (3.21.7), with its search for a dot that begins a
// line done by Buffer#indexOf instead of a JavaScript loop over every byte. That loop cost the
// main thread about 0.3 ms for each 100 KiB received; indexOf jumps from one "\n." to the next.
import { hash } from 'node:crypto';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

type Done = (err?: Error | null) => void;

/** SHA-256 of the source of smtp-server 3.21.7's `_feedDataStream`, the reader followed here. */
const FOLLOWED =
  '9d8b903f9a3a63542d72e19a9e2f67009a3b1107a28d57e8e7369355454ff230';

/**
 * Whether the installed smtp-server's reader is the one this module follows. Another (a new
 * version, perhaps with a fix of its own) is left in place: half-close-server.ts sets ours only
 * when this holds, and test/unit/data-scan.test.ts fails when it does not.
 */
export const followsLibrary =
  hash('sha256', SMTPStream.prototype._feedDataStream.toString(), 'hex') ===
  FOLLOWED;

/** the sequence that ends the DATA payload */
const END_SEQUENCE = Buffer.from('\r\n.\r\n');
/** a line that begins with a dot: the only place an escape or the terminator can be */
const LINE_DOT = Buffer.from('\n.');

/**
 * smtp-server's `SMTPStream#_feedDataStream`, step for step, but for the search: each chunk's
 * escape dots are removed and the final dot ends data mode. Set on each parser our connections
 * create (half-close-server.ts); test/unit/data-scan.test.ts compares it with the library's on
 * the same bytes cut at random places. NB! the checks at the start of DATA are the library's:
 * they keep a client from ending DATA early by how it cuts its TCP segments (SMTP smuggling).
 */
export function feedDataStream(
  this: SMTPStream,
  chunk: Buffer,
  done: Done,
): void {
  // only called in data mode, which always has a stream
  const dataStream = this._dataStream!;
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat(
      [this._lastBytes, chunk],
      this._lastBytes.length + chunk.length,
    );
    this._lastBytes = false;
  }
  let len = chunk.length;
  // ".\r\n" at the very start ends an empty message; not once a byte has been consumed
  if (
    this._atDataStart &&
    len >= 3 &&
    chunk[0] === 0x2e &&
    chunk[1] === 0x0d &&
    chunk[2] === 0x0a
  ) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  // an escape dot as the very first byte
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    len--;
    this._atDataStart = false;
  }
  // a dot at i (2 <= i < len - 2) right after a LF: the library's loop bounds, by its LF at i - 1
  for (
    let lf = chunk.indexOf(LINE_DOT, 1);
    lf !== -1 && lf < len - 3;
    lf = chunk.indexOf(LINE_DOT, lf + 1)
  ) {
    const i = lf + 1;
    if (chunk.compare(END_SEQUENCE, 0, 5, i - 2, i + 3) === 0) {
      // everything before the terminator is content, the CRLF that ends its last line included
      const buf = chunk.subarray(0, i);
      this._countDataBytes(buf.length);
      this._endDataMode(buf, chunk.subarray(i + 3), done);
      return;
    }
    if (chunk[i + 1] === 0x2e) {
      // an escape dot: emit what comes before it, go on without it
      const buf = chunk.subarray(0, i);
      this._lastBytes = false;
      this._countDataBytes(buf.length);
      if (dataStream.writable) dataStream.write(buf);
      const rest = chunk.subarray(i + 1);
      setImmediate(() => this._feedDataStream(rest, done));
      return;
    }
  }
  // the last bytes wait for the next chunk: they may begin the terminator
  this._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  if (this._lastBytes.length >= chunk.length) return done();
  const buf = chunk.subarray(0, chunk.length - this._lastBytes.length);
  this._countDataBytes(buf.length);
  if (!dataStream.writable) return done();
  if (dataStream.write(buf) || dataStream.destroyed) return done();
  // a stream that the application destroys never drains, it only closes
  const onDrain = (): void => {
    dataStream.removeListener('drain', onDrain);
    dataStream.removeListener('close', onDrain);
    done();
  };
  dataStream.once('drain', onDrain);
  dataStream.once('close', onDrain);
}
