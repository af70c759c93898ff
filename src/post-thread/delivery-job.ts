// One attempt at a message, run on the post thread: the one per-route step (post-routes.ts) with
// POSTs made on that thread. The main thread decides what goes into a job (routes already
// delivered are left out) and judges what comes back.
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MappingConfig } from '../config/schema.js';
import type { Envelope } from '../envelope.js';
import { toWire, type WireError } from '../errors/wire.js';
import type { ApiPayload } from '../map/api-payload.js';
import { postRoutes } from '../pipeline/post-routes.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import type { Exchange } from '../api/api-client.js';
import { isSuccess } from '../api/classify-failure.js';

export interface DeliveryJob {
  /** the raw message's bytes (handed over to the thread) */
  raw: Uint8Array;
  /** where attachment files are written while the job runs */
  attachmentDir?: string;
  envelope: Envelope;
  /** the routes to post, in order */
  groups: RouteGroup[];
}

/** One POST's exchange, and the error of an attachment file that could not be read for it. */
export type Posted = Exchange & { readError?: string };

/**
 * One route of a job: its exchange, or `duplicate` when the API took an earlier route of the
 * same job to the same mailbox (one dedupe key: on the main thread that route's record would
 * have been found, and this one not posted).
 */
export type RouteAnswer =
  { index: number; posted: Posted } | { index: number; duplicate: true };

/** What a job came to. */
export type JobAnswer =
  /** every route of the job was posted (or tried, or found a duplicate), by route index */
  | { kind: 'posted'; routes: RouteAnswer[]; messageId?: string }
  /** the raw message could not be parsed (or an attachment file not written): nothing posted */
  | { kind: 'unparsed'; error: WireError };

/** Posts the body of one route with its idempotency key. */
export type PostPayload = (
  payload: ApiPayload,
  idempotencyKey: string,
) => Promise<Posted>;

/**
 * How the names of a job's attachment files begin: its queue id, then random digits. Should
 * the thread die mid-job, the main thread removes them by it (removeJobFiles).
 */
export function jobFilePrefix(job: Pick<DeliveryJob, 'envelope'>): string {
  return `att-${job.envelope.id}-`;
}

/** Removes the attachment files a job left (its thread died or stalled); never rejects. */
export async function removeJobFiles(
  job: Pick<DeliveryJob, 'envelope' | 'attachmentDir'>,
): Promise<void> {
  const dir = job.attachmentDir ?? tmpdir();
  const prefix = jobFilePrefix(job);
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter(name => name.startsWith(prefix))
      .map(name => rm(join(dir, name), { force: true }).catch(() => undefined)),
  );
}

/** Runs `job` through the one per-route step (post-routes.ts): never throws. */
export async function runJob(
  job: DeliveryJob,
  mapping: MappingConfig,
  post: PostPayload,
): Promise<JobAnswer> {
  const { raw } = job;
  const answer = await postRoutes<Posted>(
    Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength),
    { attachmentDir: job.attachmentDir, filePrefix: jobFilePrefix(job) },
    { envelope: job.envelope, groups: job.groups, mapping },
    {
      post: (payload, key) => post(payload, key),
      failed: err => ({ readError: (err as Error).message }),
      took: posted => isSuccess(posted.status),
    },
  );
  if (answer.kind === 'unparsed') {
    return { kind: 'unparsed', error: toWire(answer.error) };
  }
  return {
    kind: 'posted',
    messageId: answer.messageId,
    routes: answer.routes.map(r =>
      'duplicate' in r ? r : { index: r.index, posted: r.answer },
    ),
  };
}
