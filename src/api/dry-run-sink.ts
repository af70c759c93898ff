// Dry-run: without a token, bodies are logged and written to <spool.dir>/dry-run/ instead of posted.
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PRIVATE_FILE, privateDir } from '../lib/durable-fs.js';
import type { ApiPayload } from '../map/api-payload.js';
import type { Logger } from '../observability/logger.js';
import type { PayloadSink, PostContext } from '../pipeline/payload-sink.js';
import { base64Length, serializePayload } from './payload-stream.js';

/** Writes each body as `<queueId>-<routeIndex>.json`, logs it with attachments shortened. */
export class DryRunSink implements PayloadSink {
  readonly kind = 'dry-run';
  readonly dir: string;

  constructor(
    spoolDir: string,
    private readonly log: Logger,
  ) {
    this.dir = join(spoolDir, 'dry-run');
  }

  async send(payload: ApiPayload, context: PostContext): Promise<void> {
    // the bodies that would be posted are mail at rest: owner-only, as the spool
    await privateDir(this.dir);
    const file = join(
      this.dir,
      `${context.queueId}-${context.routeIndex}.json`,
    );
    // the JSON of JSON.stringify(payload, null, 2) and a newline, streamed from the attachments
    const body = serializePayload(payload, { indent: 2 }).stream();
    await pipeline(
      body,
      async function* (source: Readable) {
        yield* source;
        yield Buffer.from('\n');
      },
      createWriteStream(file, { mode: PRIVATE_FILE }),
    );
    this.log.info('dry-run: payload not posted (no api.token)', {
      queueId: context.queueId,
      file,
      payload: shortenAttachments(payload),
    });
  }

  async close(): Promise<void> {}
}

/** The body with each attachment's base64 replaced by its length, for logs. */
export function shortenAttachments(payload: ApiPayload): ApiPayload<string> {
  const { attachments, ...rest } = payload;
  if (!attachments) return rest;
  return {
    ...rest,
    attachments: attachments.map(a => ({
      name: a.name,
      file: `<${base64Length(a.file.size)} base64 chars>`,
    })),
  };
}
