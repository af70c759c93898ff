// Small durable-write helpers: fsync a file's data and the directory entry that names it.
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** fsyncs a directory, so a rename or unlink within it survives a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `tmpPath` (exclusive), fsyncs it, then renames it to `path` atomically. */
export async function writeFileAtomic(
  tmpPath: string,
  path: string,
  data: string,
  options: { syncDir?: boolean } = {},
): Promise<void> {
  const handle = await open(tmpPath, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmpPath, path);
  if (options.syncDir) await fsyncDir(dirname(path));
}
