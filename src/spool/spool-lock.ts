// One daemon per spool: a pid file taken before recovery, so a second start cannot requeue the
// first one's messages in flight or delete its half-received files.
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Thrown when another live mailbridge process holds the spool. */
export class SpoolBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpoolBusyError';
  }
}

/** True when `pid` is a running process that looks like a Node process (or we cannot tell). */
async function holderAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // a recycled pid (a container restart) belongs to some other program: the lock is stale
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(
    () => null,
  );
  return cmdline === null || /node|mailbridge/.test(cmdline);
}

/**
 * Takes the spool's lock file (`<spool>/mailbridge.pid`); a lock left by a dead process is taken
 * over. Resolves to the function that releases it. Re-entrant within one process.
 */
export async function lockSpool(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'mailbridge.pid');
  const mine = `${process.pid}\n`;
  const release = async () => {
    const content = await readFile(path, 'utf8').catch(() => null);
    if (content === mine) await unlink(path).catch(() => undefined);
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx' });
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(
      (await readFile(path, 'utf8').catch(() => '')).trim(),
    );
    if (holder === process.pid) return release;
    if (holder > 0 && (await holderAlive(holder))) {
      throw new SpoolBusyError(
        `spool ${dir} is in use by process ${holder} (one daemon per spool; stop it or set another spool.dir)`,
      );
    }
    await unlink(path).catch(() => undefined); // stale: its process is gone
  }
  throw new SpoolBusyError(`could not take the lock of spool ${dir}`);
}
