// One attempt at a message, run on the post thread: the one per-route step (post-routes.ts) with
// POSTs made on that thread. The main thread decides what goes into a job (routes already
// delivered are left out) and judges what comes back.
import type { MappingConfig } from '../../config/schema.js';
import { toWire } from '../../errors/wire.js';
import type { ApiPayload } from '../../map/api-payload.js';
import { postRoutes } from '../../pipeline/post-routes.js';
import { isSuccess } from '../classify-failure.js';
import type { Posted } from '../http-exchange.js';
import { jobFilePrefix } from './job-files.js';
import type { DeliveryJob, JobAnswer } from './messages.js';

/** Posts the body of one route with its idempotency key. */
export type PostPayload = (
  payload: ApiPayload,
  idempotencyKey: string,
) => Promise<Posted>;

/** Runs `job` through the one per-route step (post-routes.ts): never throws. */
export async function runJob(
  job: DeliveryJob,
  mapping: MappingConfig,
  post: PostPayload,
): Promise<JobAnswer> {
  const { raw } = job;
  const inFile = !(raw instanceof Uint8Array);
  const answer = await postRoutes<Posted>(
    inFile ? raw.path : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength),
    {
      attachmentDir: job.attachmentDir,
      filePrefix: jobFilePrefix(job),
      start: inFile ? raw.start : undefined,
      length: inFile ? raw.length : undefined,
    },
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
