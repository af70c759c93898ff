// Waits for a condition that events make true, bounded in time; and spool folder listings.
import type { EventEmitter } from 'node:events';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  isSegmentName,
  readSegment,
  type SegmentContents,
} from '../../src/spool/journal.js';
import { isNotFound } from '../../src/spool/layout.js';
import type { CliProcess } from './spawn-daemon.js';

/** Something that emits `event` whenever the condition may have changed. */
export type Trigger = [EventEmitter, string];

/**
 * Resolves once `check()` is true. It is checked now and again each time a trigger emits; after
 * `timeoutMs` (or when `check` throws) the promise rejects with `what` and the last `describe()` in the message.
 */
export function waitFor(
  check: () => boolean,
  triggers: Trigger[],
  options: { timeoutMs: number; what: string; describe?: () => string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      for (const [emitter, event] of triggers) emitter.off(event, onEvent);
    };
    const onEvent = () => {
      let done: boolean;
      try {
        done = check();
      } catch (err) {
        cleanup();
        reject(err as Error);
        return;
      }
      if (!done) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      const state = options.describe ? ` (${options.describe()})` : '';
      reject(
        new Error(
          `timed out after ${options.timeoutMs} ms waiting for ${options.what}${state}`,
        ),
      );
    }, options.timeoutMs);
    for (const [emitter, event] of triggers) emitter.on(event, onEvent);
    onEvent();
  });
}

/** How many log lines of a child have `message` (and match `extra`, when given). */
export function countLogs(
  proc: CliProcess,
  message: string,
  extra: (line: Record<string, unknown>) => boolean = () => true,
): number {
  return proc.logs.filter(l => l.message === message && extra(l)).length;
}

/**
 * Resolves once the child has written `count` log lines with `message`; rejects after
 * `timeoutMs`, or as soon as the child exits without them.
 */
export async function waitForLogCount(
  proc: CliProcess,
  message: string,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const stdout = proc.child.stdout;
  if (!stdout) throw new Error('the child has no stdout pipe');
  // set by a 'close' listener added before waitFor's, so the check sees it on that event
  let closed = stdout.closed;
  const onClose = () => (closed = true);
  proc.child.once('close', onClose);
  try {
    await waitFor(
      () => {
        if (countLogs(proc, message) >= count) return true;
        if (closed) {
          throw new Error(
            `mailbridge exited after ${countLogs(proc, message)} of ${count} ` +
              `"${message}" lines; stderr: ${proc.stderr()}`,
          );
        }
        return false;
      },
      // the helper's own 'data' listener was added first, so `logs` is current here
      [
        [stdout, 'data'],
        [proc.child, 'close'],
      ],
      {
        timeoutMs,
        what: `${count} "${message}" log lines`,
        describe: () => `${countLogs(proc, message)} so far`,
      },
    );
  } finally {
    proc.child.off('close', onClose);
  }
}

/** The files in one folder of a spool (tmp, msg, queue, active, dead); [] when it is missing. */
export async function spoolFiles(
  spoolDir: string,
  folder: string,
): Promise<string[]> {
  try {
    return (await readdir(join(spoolDir, folder))).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * The ids of the entries in one folder of a spool (queue, active, dead): its state files, and
 * in active/ also the fresh messages (state and raw bytes in one `.eml` file, or a record of a
 * journal segment not marked done).
 */
export async function spoolIds(
  spoolDir: string,
  folder: 'queue' | 'active' | 'dead',
): Promise<string[]> {
  const ids = new Set<string>();
  for (const name of await spoolFiles(spoolDir, folder)) {
    if (name.endsWith('.json')) ids.add(name.slice(0, -'.json'.length));
    if (folder === 'active' && name.endsWith('.eml')) {
      ids.add(name.slice(0, -'.eml'.length));
    }
    if (folder === 'active' && isSegmentName(name)) {
      for (const { id } of await liveRecords(join(spoolDir, folder, name))) {
        ids.add(id);
      }
    }
  }
  return [...ids].sort();
}

/**
 * A journal segment as read, or undefined once it is deleted (the daemon deletes a segment whose
 * records are all done in libuv's pool: it may go between a listing and this).
 */
export async function segmentIfAny(
  path: string,
): Promise<SegmentContents | undefined> {
  try {
    return await readSegment(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The records of a journal segment not marked done; none once it is deleted. */
export async function liveRecords(
  path: string,
): Promise<SegmentContents['records']> {
  return (await segmentIfAny(path))?.records ?? [];
}
