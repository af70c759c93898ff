// One attempt at a message, run on the post thread: parse the raw message, map it for each route
// left, post each body. The main thread decides what goes into a job (duplicates are left out,
// by the Message-ID found at accept time) and judges what comes back; the job itself decides
// nothing but whether the parsed Message-ID is the one it was given.
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MappingConfig } from '../config/schema.js';
import type { Envelope } from '../envelope.js';
import { isTemporary } from '../errors/bridge-error.js';
import type { ApiPayload } from '../map/api-payload.js';
import { messageIds, toApiPayload } from '../map/to-api-payload.js';
import { parseMessage } from '../parse/parse-message.js';
import type { RouteGroup } from '../routing/resolve-route.js';
import type { Exchange } from './api-client.js';
import { isSuccess } from './classify-failure.js';
import { idempotencyKey, mailboxKey } from './deliver-message.js';

export interface DeliveryJob {
  /** the raw message's bytes (handed over to the thread) */
  raw: Uint8Array;
  /** where attachment files are written while the job runs */
  attachmentDir?: string;
  envelope: Envelope;
  /** the routes to post, in order */
  groups: RouteGroup[];
  /** the normalised Message-ID the routes were checked against for duplicates */
  messageId: string;
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
  | { kind: 'posted'; routes: RouteAnswer[] }
  /** the parsed message has another Message-ID than the job's: nothing was posted */
  | { kind: 'other-id'; messageId: string }
  /** the raw message could not be parsed (or an attachment file not written): nothing posted */
  | { kind: 'unparsed'; error: string; temporary: boolean };

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

/** Runs `job`: never throws; a failure is in the answer. */
export async function runJob(
  job: DeliveryJob,
  mapping: MappingConfig,
  post: PostPayload,
): Promise<JobAnswer> {
  const { raw } = job;
  let message;
  try {
    message = await parseMessage(
      Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength),
      {
        attachmentDir: job.attachmentDir,
        filePrefix: jobFilePrefix(job),
      },
    );
  } catch (err) {
    return {
      kind: 'unparsed',
      error: (err as Error).message,
      temporary: isTemporary(err),
    };
  }
  try {
    const { messageId } = messageIds(message);
    if (messageId !== job.messageId) return { kind: 'other-id', messageId };
    const routes: RouteAnswer[] = [];
    /** the mailboxes (dedupe keys) the API has taken in this job */
    const taken = new Set<string>();
    for (const group of job.groups) {
      const mailbox = mailboxKey(group);
      if (taken.has(mailbox)) {
        routes.push({ index: group.index, duplicate: true });
        continue;
      }
      let posted: Posted;
      try {
        const payload = toApiPayload({
          message,
          envelope: job.envelope,
          group,
          mapping,
        });
        posted = await post(payload, idempotencyKey(payload, group));
      } catch (err) {
        // a fault of ours, not of the API: the route is tried again later
        posted = { readError: (err as Error).message };
      }
      routes.push({ index: group.index, posted });
      if (isSuccess(posted.status)) taken.add(mailbox);
    }
    return { kind: 'posted', routes };
  } finally {
    // the attachment files live for one attempt: the next one parses the raw message again
    await message.dispose();
  }
}
