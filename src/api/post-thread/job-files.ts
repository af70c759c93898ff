// The attachment files of a delivery job: how their names begin, and their removal.
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryJob } from './messages.js';

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
