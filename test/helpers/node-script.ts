// A script run in a Node process of its own (ES module, tsx loaded, so it may import our .ts
// sources), for what only a fresh process shows: V8 flags, process-wide state.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';

/**
 * Runs `script` with Node flags `flags` (NODE_OPTIONS emptied) and returns what it wrote to its
 * stdout; its stderr goes to ours. Fails when it exits other than 0.
 */
export async function nodeScript(
  flags: string[],
  script: string,
): Promise<string> {
  const child = spawn(
    process.execPath,
    [...flags, '--import', 'tsx', '--input-type=module', '-e', script],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  let out = '';
  child.stdout
    .setEncoding('utf8')
    .on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code, out).to.equal(0);
  return out;
}

/** The URL of a module of ours (`src/...`), for a script's import(). */
export function sourceUrl(path: string): string {
  return new URL(`../../${path}`, import.meta.url).href;
}
