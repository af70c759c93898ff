// api/post-thread/young-generation.ts: the post thread's young generation is its own size,
// whether or not the process runs with --max-semi-space-size, and the main thread keeps its own.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';
import {
  semiSpaceFlag,
  youngGenerationMb,
} from '../../src/api/post-thread/young-generation.js';

const MiB = 1024 * 1024;

/**
 * Runs, in a new Node process started with `nodeFlags`, a worker started through
 * withYoungGeneration(`semiSpaceMb`), then a plain worker, then the same work on the main thread;
 * each keeps about 30 MB of small objects alive, so its new space grows to its largest. Returns
 * the three new spaces' sizes in bytes.
 */
async function newSpaces(
  nodeFlags: string[],
  semiSpaceMb: number,
): Promise<{ raised: number; after: number; main: number }> {
  const module = new URL(
    '../../src/api/post-thread/young-generation.ts',
    import.meta.url,
  ).href;
  const fill = [
    `const keep = []; for (let i = 0; i < 1e6; i++) keep.push({ i });`,
    `const size = process.getBuiltinModule('node:v8').getHeapSpaceStatistics().find(s => s.space_name === 'new_space').space_size;`,
  ].join('\n');
  const worker = `${fill}\nprocess.getBuiltinModule('node:worker_threads').parentPort.postMessage(size);`;
  const script = `
    const { withYoungGeneration } = await import(${JSON.stringify(module)});
    const { Worker } = await import('node:worker_threads');
    const sizeOf = w => new Promise((ok, fail) => { w.once('message', ok); w.once('error', fail); });
    const code = ${JSON.stringify(worker)};
    const raised = await sizeOf(withYoungGeneration(${semiSpaceMb}, mb =>
      new Worker(code, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: mb } })));
    const after = await sizeOf(new Worker(code, { eval: true }));
    ${fill}
    process.stdout.write(JSON.stringify({ raised, after, main: size }));
  `;
  const child = spawn(
    process.execPath,
    [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', script],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  let out = '';
  child.stdout
    .setEncoding('utf8')
    .on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number];
  expect(code, out).to.equal(0);
  return JSON.parse(out) as { raised: number; after: number; main: number };
}

describe('api/post-thread/young-generation: the post thread’s own young generation', () => {
  const flags: Array<[string[], string | undefined]> = [
    [[], undefined],
    [['--max-semi-space-size=1'], '1'],
    [['--max-semi-space-size', '4'], '4'],
    [['--max_semi_space_size=2'], '2'],
    [['--max-semi-space-size=1', '--max-semi-space-size=16'], '16'],
    [['--max-old-space-size=512', '--inspect'], undefined],
    [['--max-semi-space-size-x=1'], undefined],
  ];
  for (const [args, value] of flags) {
    it(`semiSpaceFlag(${JSON.stringify(args)}) is ${value}`, () => {
      expect(semiSpaceFlag(args)).to.equal(value);
    });
  }

  it('a young generation is three semi-spaces', () => {
    expect(youngGenerationMb(8)).to.equal(24);
  });

  it('under --max-semi-space-size=1 the worker still gets its semi-space; the flag is set back for later workers and the main thread', async function () {
    this.timeout(60_000);
    const sizes = await newSpaces(['--max-semi-space-size=1'], 8);
    // a new space is two semi-spaces
    expect(sizes.raised).to.be.at.least(8 * MiB);
    expect(sizes.after).to.be.at.most(2 * MiB);
    expect(sizes.main).to.be.at.most(2 * MiB);
  });

  it('without the flag the worker gets its semi-space through resourceLimits', async function () {
    this.timeout(60_000);
    const sizes = await newSpaces([], 2);
    expect(sizes.raised).to.be.at.most(4 * MiB);
    // V8's own size, for comparison: larger
    expect(sizes.after).to.be.above(4 * MiB);
  });
});
