// One daemon per spool: a pid file taken before recovery, so a second start cannot requeue the
// first one's messages in flight or delete its half-received files. On Linux the kernel decides
// who takes it (an abstract socket named after the spool), so two starts can never both win.
import { hash } from 'node:crypto';
import { readFile, realpath, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { PRIVATE_FILE } from '../lib/durable-fs.js';

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

/** The locks this process holds, by spool folder: taking one again only counts. */
const held = new Map<string, { count: number; release: () => Promise<void> }>();

/**
 * The kernel's mutex for `dir`: an abstract Unix socket (Linux) named after the folder's real
 * path. Binding it is atomic and it vanishes with its process, kill -9 included, so no stale
 * state can be misjudged. Null where abstract sockets do not exist (the pid file alone then).
 */
async function bindMutex(dir: string): Promise<Server | null> {
  if (process.platform !== 'linux') return null;
  const real = await realpath(dir);
  const name = `\0mailbridge-spool-${hash('sha256', real, 'hex').slice(0, 40)}`;
  const server = createServer(socket => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(name, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw err;
    return null; // no abstract sockets here (a sandbox): the pid file alone
  }
  server.unref();
  return server;
}

/**
 * Takes the spool's lock (`<spool>/mailbridge.pid`, and on Linux the kernel's mutex); a lock
 * file left by a dead process is taken over. Resolves to the function that releases it.
 * Re-entrant within one process.
 */
export async function lockSpool(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'mailbridge.pid');
  const taken = held.get(path);
  if (taken) {
    taken.count++;
    return once(taken.release);
  }
  const busy = async () => {
    const holder = (await readFile(path, 'utf8').catch(() => '')).trim();
    return new SpoolBusyError(
      `spool ${dir} is in use by process ${holder || '(unknown)'} (one daemon per spool; stop it or set another spool.dir)`,
    );
  };
  let mutex: Server | null;
  try {
    mutex = await bindMutex(dir);
  } catch {
    throw await busy();
  }
  try {
    await takePidFile(dir, path);
  } catch (err) {
    await closeServer(mutex);
    throw err;
  }
  const mine = `${process.pid}\n`;
  const entry = {
    count: 1,
    release: async () => {
      if (--entry.count > 0) return;
      held.delete(path);
      const content = await readFile(path, 'utf8').catch(() => null);
      if (content === mine) await unlink(path).catch(() => undefined);
      await closeServer(mutex);
    },
  };
  held.set(path, entry);
  return once(entry.release);
}

/**
 * Writes our pid into the lock file. Another live process named there (a release without the
 * kernel's mutex, or none here) keeps the spool; a dead one's file is taken over.
 */
async function takePidFile(dir: string, path: string): Promise<void> {
  const mine = `${process.pid}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx', mode: PRIVATE_FILE });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(
      (await readFile(path, 'utf8').catch(() => '')).trim(),
    );
    if (holder === process.pid) return;
    if (holder > 0 && (await holderAlive(holder))) {
      throw new SpoolBusyError(
        `spool ${dir} is in use by process ${holder} (one daemon per spool; stop it or set another spool.dir)`,
      );
    }
    await unlink(path).catch(() => undefined); // stale: its process is gone
  }
  throw new SpoolBusyError(`could not take the lock of spool ${dir}`);
}

/** `release` callable any number of times, acting on the first call only. */
function once(release: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= release());
}

function closeServer(server: Server | null): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise(resolve => server.close(() => resolve()));
}
