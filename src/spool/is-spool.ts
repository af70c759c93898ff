// Whether a folder is a spool, judged without writing anything: the `queue` commands must not
// create a spool where an operator mistyped a path.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The folders every spool has had since its first version (SpoolLayout.init creates them with
 * signal/, held/ and the claim folders, which a spool of an older version may lack).
 */
const MARKERS = ['tmp', 'msg', 'queue', 'dead'];

/** Why `dir` is not a spool (missing, not a folder, without spool folders), or null if it is. */
export async function notASpool(dir: string): Promise<string | null> {
  const kind = await kindOf(dir);
  if (kind === 'missing') return `${dir} is not a spool: no such folder`;
  if (kind === 'other') return `${dir} is not a spool: not a folder`;
  const missing: string[] = [];
  for (const name of MARKERS) {
    if ((await kindOf(join(dir, name))) !== 'dir') missing.push(`${name}/`);
  }
  if (missing.length === 0) return null;
  return `${dir} is not a spool: it has no ${missing.join(', ')} (is spool.dir right? a daemon creates them at its first start)`;
}

async function kindOf(path: string): Promise<'dir' | 'other' | 'missing'> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}
