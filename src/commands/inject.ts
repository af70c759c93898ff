// `inject FILE.eml --rcpt ADDR [--from ADDR]`: spool a message as if it had arrived by SMTP.
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { newQueueId } from '../smtp/create-smtp-server.js';
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
    createReadStream(options.file),
    spool.tmpMessagePath(id),
    { durable: true, header: spoolHeader(initial) },
  );
  const entry = withReceived(initial, received);
  await spool.commit(entry, received.path, 'queue');
  process.stdout.write(`queued as ${id}\n`);
  return 0;
}
