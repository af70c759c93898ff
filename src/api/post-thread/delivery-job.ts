// One attempt at a message, run on the post thread: the policy step
// (pipeline/route-policy.ts: noise, sender authentication), then the one per-route step (post-routes.ts) with POSTs made on
// that thread. The main thread decides what goes into a job (routes already delivered are left
// out) and judges what comes back.
import type { SenderAuthenticator } from '../../auth/sender-auth.js';
import type { MappingConfig } from '../../config/schema.js';
import { toWire } from '../../errors/wire.js';
import type { ApiPayload } from '../../map/api-payload.js';
import { postRoutes } from '../../pipeline/post-routes.js';
import { applyRoutePolicy } from '../../pipeline/route-policy.js';
import { isSuccess } from '../classify-failure.js';
import type { Posted } from '../http-exchange.js';
import { jobFilePrefix } from './job-files.js';
import type { DeliveryJob, JobAnswer, RouteAnswer } from './messages.js';

/** Posts the body of one route with its idempotency key. */
export type PostPayload = (
  payload: ApiPayload,
  idempotencyKey: string,
) => Promise<Posted>;

/** Runs `job` through the route policies and the one per-route step: never throws. */
export async function runJob(
  job: DeliveryJob,
  mapping: MappingConfig,
  post: PostPayload,
  authenticator?: SenderAuthenticator,
): Promise<JobAnswer> {
  const { raw } = job;
  const inFile = !(raw instanceof Uint8Array);
  const bytes = inFile
    ? undefined
    : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const policy = await applyRoutePolicy(job.groups, {
    raw: bytes ?? (raw as Exclude<typeof raw, Uint8Array>),
    envelope: job.envelope,
    known: job.auth,
    authenticator,
  });
  const judgement = { auth: policy.auth, judged: policy.judged };
  const decided: RouteAnswer[] = [
    ...policy.held.map(h => ({ index: h.index, held: h.reason })),
    ...policy.dropped.map(d => ({ index: d.index, dropped: d.reason })),
    ...policy.deferred.map(d => ({ index: d.index, deferred: d.reason })),
  ];
  if (policy.post.length === 0) {
    return { kind: 'posted', routes: decided, ...judgement };
  }
  const answer = await postRoutes<Posted>(
    inFile ? raw.path : bytes!,
    {
      attachmentDir: job.attachmentDir,
      filePrefix: jobFilePrefix(job),
      start: inFile ? raw.start : undefined,
      length: inFile ? raw.length : undefined,
    },
    { envelope: job.envelope, groups: policy.post, mapping },
    {
      post: (payload, key) => post(payload, key),
      failed: err => ({ readError: (err as Error).message }),
      took: posted => isSuccess(posted.status),
    },
  );
  if (answer.kind === 'unparsed') {
    return { kind: 'unparsed', error: toWire(answer.error), ...judgement };
  }
  return {
    kind: 'posted',
    messageId: answer.messageId,
    routes: [
      ...decided,
      ...answer.routes.map(r =>
        'duplicate' in r ? r : { index: r.index, posted: r.answer },
      ),
    ],
    ...judgement,
  };
}
