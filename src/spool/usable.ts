// Whether the spool can take a message now: for /readyz, which means "accepting mail".
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';

/**
 * Why the spool cannot store a message (its folder gone or read-only, its disk full), or null.
 * Two system calls: cheap enough for every readiness probe.
 */
export async function spoolProblem(spool: {
  dir: string;
  tmpDir: string;
}): Promise<string | null> {
  try {
    // messages are written here first
    await access(spool.tmpDir, constants.W_OK);
    const disk = await statfs(spool.dir);
    if (disk.bavail === 0) return 'spool cannot store: its disk is full';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return `spool cannot store: ${code}`;
  }
  return null;
}
