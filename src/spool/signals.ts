// Operators' signals to a running daemon: `queue retry` marks an id in signal/, and the daemon's
// rescan takes the marks, re-reading only new and signalled entries.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_FILE } from '../lib/durable-fs.js';
import { unlinkIfPresent, type SpoolLayout } from './layout.js';

/** Tells a running daemon that a waiting entry changed on disk. */
export async function signal(layout: SpoolLayout, id: string): Promise<void> {
  await writeFile(join(layout.dir, 'signal', id), '', { mode: PRIVATE_FILE });
}

/** The ids signalled since the last call; their signals are consumed. */
export async function takeSignals(layout: SpoolLayout): Promise<string[]> {
  const names = await readdir(join(layout.dir, 'signal'));
  for (const name of names) {
    await unlinkIfPresent(join(layout.dir, 'signal', name));
  }
  return names;
}
