// `preview FILE.eml`: the bodies that would be posted, one JSON line per route; sends nothing.
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { buildPayloads } from '../pipeline/build-payloads.js';
import { serializePayload } from '../api/payload-stream.js';
import type { Envelope } from '../mail/envelope.js';
import { classifyNoise } from '../mail/noise.js';
import { parseMessage } from '../parse/parse-message.js';
import { noiseAction, noiseReason } from '../pipeline/route-policy.js';
import { readHeaderBlock } from '../mail/header-block.js';
import type { ParsedMessage } from '../parse/parsed-message.js';
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
  exitOnClosedStdout();
  await stat(options.file);
  const message = await parseMessage(options.file);
  try {
    return await printPayloads(message, config, options);
  } finally {
    await message.dispose();
  }
}

async function printPayloads(
  message: ParsedMessage,
  config: Config,
  options: PreviewOptions,
): Promise<number> {
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
  // the noise policies, on stderr: stdout stays one body per route, as posted (or on replay)
  const noise = classifyNoise(await readHeaderBlock({ path: options.file }));
  const built = buildPayloads(message, envelope, config, noise?.kind);
  for (const { group } of built) {
    const action = noise ? noiseAction(group.route, noise) : 'deliver';
    if (action === 'deliver') continue;
    const verb = action === 'hold' ? 'held' : 'dropped (nothing posted)';
    process.stderr.write(
      `mailbridge: policy: route ${group.index} (${group.route.match}) would be ${verb}: ${noiseReason(noise!, action)}\n`,
    );
  }
  const indent = options.pretty ? 2 : 0;
  for (const { payload } of built) {
    // streamed: an attachment's base64 is never held whole in memory
    await write(serializePayload(payload, { indent }).stream());
    await write(['\n']);
  }
  return 0;
}

/** A reader that went away (`| head`) is not an error: stop quietly, as other tools do. */
function exitOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

/** Copies chunks to stdout, waiting for it to drain; stdout stays open. */
async function write(chunks: AsyncIterable<unknown> | Iterable<unknown>) {
  for await (const chunk of chunks) {
    if (!process.stdout.write(chunk as Buffer | string)) {
      await once(process.stdout, 'drain');
    }
  }
}
