// systemd's Type=notify: tell the service manager the daemon is ready. Node cannot send the
// unix datagram of the sd_notify protocol, so systemd-notify sends it (the unit says
// NotifyAccess=all, since the sender is a child of the daemon).
import { execFile } from 'node:child_process';
import type { Environment } from '../config/environment.js';
import { errorFields, type Logger } from '../observability/logger.js';

/** The log line once systemd has been told (tests wait for it). */
export const NOTIFIED = 'systemd notified: ready';

/**
 * systemd-notify waits until the manager has read the message (so that a sender that exits at
 * once is still counted as the unit's); a manager that never answers must not hold it forever.
 */
const NOTIFY_TIMEOUT_MS = 30_000;

/** Runs a command; resolves when it exited 0, rejects otherwise. */
export type RunCommand = (file: string, args: string[]) => Promise<void>;

const runCommand: RunCommand = (file, args) =>
  new Promise((done, fail) => {
    execFile(file, args, { timeout: NOTIFY_TIMEOUT_MS }, err =>
      err ? fail(err) : done(),
    );
  });

/**
 * When systemd started the daemon with Type=notify ($NOTIFY_SOCKET), tells it that mail is
 * accepted now: the SMTP listener listens and the spool is mended. Elsewhere does nothing.
 * Never rejects: a failure is logged (systemd then stops the unit at TimeoutStartSec).
 */
export async function notifyReady(
  environment: Environment | undefined,
  log: Logger,
  run: RunCommand = runCommand,
): Promise<void> {
  if (!environment?.notifySocket) return;
  try {
    await run('systemd-notify', ['--ready', '--status=accepting mail']);
    log.info(NOTIFIED, { socket: environment.notifySocket });
  } catch (err) {
    log.error(
      'systemd-notify failed: systemd was not told that mailbridge is ready',
      errorFields(err),
    );
  }
}
