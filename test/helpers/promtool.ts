// Runs Prometheus's promtool (Debian: the `prometheus` package; .ci/run installs it).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';

/** Whether promtool can be run here. */
export const hasPromtool =
  spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

/** Why promtool tests are skipped, said once per file that skips them. */
export const PROMTOOL_MISSING =
  'promtool is not installed: its checks are skipped here (CI installs it: apt-get install prometheus)';

/** Runs promtool with `args`, `input` on its stdin; resolves with its exit code and output. */
export async function promtool(
  args: string[],
  input = '',
): Promise<{ code: number | null; output: string }> {
  const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}
