// `preview FILE.eml`: the bodies that would be posted, one JSON line per route; sends nothing.
import { stat } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { buildPayloads } from '../deliver/deliver-message.js';
import type { Envelope } from '../envelope.js';
import { parseMessage } from '../parse/parse-message.js';
import { resolveRoute } from '../routing/resolve-route.js';

export interface PreviewOptions {
  file: string;
  /** envelope recipients; defaults to the To and Cc addresses that have a route */
  rcpt: string[];
  from?: string;
  pretty: boolean;
}

/** Prints each body on stdout; exit 1 when a recipient has no route or the file is unreadable. */
export async function runPreview(
  config: Config,
  options: PreviewOptions,
): Promise<number> {
  await stat(options.file);
  const message = await parseMessage(options.file);
  let rcptTo = options.rcpt;
  if (rcptTo.length === 0) {
    rcptTo = [...message.to, ...message.cc]
      .map(a => a.address)
      .filter(address => resolveRoute(address, config.routes));
    if (rcptTo.length === 0) {
      process.stderr.write(
        'mailbridge: no To or Cc address has a route; pass --rcpt ADDR\n',
      );
      return 1;
    }
  }
  const unrouted = rcptTo.filter(
    address => !resolveRoute(address, config.routes),
  );
  if (unrouted.length) {
    process.stderr.write(
      `mailbridge: 550 5.1.1 no route for ${unrouted.join(', ')}\n`,
    );
    return 1;
  }
  const envelope: Envelope = {
    id: 'preview',
    mailFrom: options.from ?? null,
    rcptTo,
    receivedAt: new Date().toISOString(),
  };
  for (const { payload } of buildPayloads(message, envelope, config)) {
    process.stdout.write(
      `${JSON.stringify(payload, null, options.pretty ? 2 : undefined)}\n`,
    );
  }
  return 0;
}
