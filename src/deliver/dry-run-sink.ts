// Dry-run: without a token, bodies are logged and written to <spool.dir>/dry-run/ instead of posted.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiPayload } from '../map/api-payload.js';
import type { Logger } from '../observability/logger.js';
import type { PayloadSink, PostContext } from './payload-sink.js';

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
    await mkdir(this.dir, { recursive: true });
    const file = join(
      this.dir,
      `${context.queueId}-${context.routeIndex}.json`,
    );
    await writeFile(file, JSON.stringify(payload, null, 2) + '\n');
    this.log.info('dry-run: payload not posted (no api.token)', {
      queueId: context.queueId,
      file,
      payload: shortenAttachments(payload),
    });
  }

  async close(): Promise<void> {}
}

/** The body with each attachment's base64 replaced by its length, for logs. */
export function shortenAttachments(payload: ApiPayload): ApiPayload {
  if (!payload.attachments) return payload;
  return {
    ...payload,
    attachments: payload.attachments.map(a => ({
      name: a.name,
      file: `<${a.file.length} base64 chars>`,
    })),
  };
}
