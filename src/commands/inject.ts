// `inject FILE.eml --rcpt ADDR [--from ADDR]`: spool a message as if it had arrived by SMTP.
import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { newQueueId } from '../mail/queue-id.js';
import { receiveToFile } from '../smtp/receive-to-file.js';
import { groupByRoute, resolveRoute } from '../routing/resolve-route.js';
import { newQueueEntry, withReceived } from '../spool/queue-entry.js';
import { spoolHeader } from '../spool/spool-file.js';
import { Spool } from '../spool/spool.js';

export interface InjectOptions {
  file: string;
  rcpt: string[];
  from?: string;
}

/** Writes the message durably into queue/; a running daemon picks it up at its next scan. */
export async function runInject(
  config: Config,
  options: InjectOptions,
): Promise<number> {
  if (options.rcpt.length === 0) {
    process.stderr.write('mailbridge: inject needs at least one --rcpt ADDR\n');
    return 2;
  }
  const unrouted = options.rcpt.filter(r => !resolveRoute(r, config.routes));
  if (unrouted.length) {
    process.stderr.write(
      `mailbridge: 550 5.1.1 no route for ${unrouted.join(', ')}\n`,
    );
    return 1;
  }
  // refused as SMTP would refuse it, before anything is written to the spool
  const limit = config.smtp.maxMessageSize;
  const { size } = await stat(options.file);
  if (size > limit) return tooBig(size, limit);
  const spool = await new Spool(resolve(config.spool.dir)).init();
  const now = Date.now();
  const id = newQueueId(now);
  const initial = newQueueEntry({
    envelope: {
      id,
      mailFrom: options.from ?? null,
      rcptTo: options.rcpt,
      helo: 'mailbridge-inject',
      receivedAt: new Date(now).toISOString(),
    },
    groups: groupByRoute(options.rcpt, config.routes),
    messageId: null,
    size: 0,
    now,
  });
  // the same file as an SMTP accept writes: the state's header line, then the raw bytes
  const received = await receiveToFile(
    limited(createReadStream(options.file), limit),
    spool.tmpMessagePath(id),
    { durable: true, header: spoolHeader(initial) },
  );
  if (received.oversized) {
    // it grew while it was read, or is no regular file (a pipe's stat says 0 bytes); past the
    // limit the rest was read and dropped, as in SMTP, so /dev/zero cannot fill the disk
    await unlink(received.path).catch(() => undefined);
    return tooBig(received.size, limit);
  }
  if (received.malformed) {
    // refused as SMTP refuses it: the parser could not take it, it would only go dead
    process.stderr.write(
      `mailbridge: 554 5.6.0 message structure refused: ${received.malformed.text}\n`,
    );
    return 1;
  }
  const entry = withReceived(initial, received);
  await spool.commit(entry, received.path, 'queue');
  process.stdout.write(`queued as ${id}\n`);
  return 0;
}

/**
 * The stream as receiveToFile sees an SMTP data stream: `sizeExceeded` turns true once more
 * than `limit` bytes went through (it stops writing from there), and the stream ends.
 */
function limited(
  source: Readable,
  limit: number,
): Transform & { sizeExceeded?: boolean } {
  let size = 0;
  const counter: Transform & { sizeExceeded?: boolean } = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size <= limit || counter.sizeExceeded) return done(null, chunk);
      // past the limit: refused, and the source is not read on (it may never end)
      counter.sizeExceeded = true;
      source.unpipe(counter);
      source.destroy();
      done(null, chunk);
      counter.end();
    },
  });
  source.on('error', err => counter.destroy(err));
  return source.pipe(counter);
}

/** The 552 an SMTP client would get for the same message; exit status 1. */
function tooBig(size: number, limit: number): number {
  process.stderr.write(
    `mailbridge: 552 5.3.4 message too big (${size} bytes; smtp.maxMessageSize is ${limit})\n`,
  );
  return 1;
}
