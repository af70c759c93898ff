// api/post-thread/young-generation.ts: the post thread's young generation is its own size,
// whether or not the process runs with --max-semi-space-size, and the main thread keeps its own.
// A worker's heap_size_limit is its old generation's limit plus its young generation's: exact,
// so these tests read it instead of waiting for a new space to grow.
import { expect } from 'chai';
import {
  nodeOptionsArguments,
  semiSpaceFlag,
  youngGenerationMb,
} from '../../src/api/post-thread/young-generation.js';
import { nodeScript, sourceUrl } from '../helpers/node-script.js';

/**
 * In a process started with `flags`: the heap limits (MiB) of workers with a 64 MiB old
 * generation, started through withYoungGeneration(8) (`raised`) or plainly (`plain...`), and of
 * the main thread before and after. `overlap`: two starts at once (stand-ins that never run, so
 * the order is the test's), the first running, then a plain worker (`whileOther`); the second
 * exiting, then a plain worker (`afterBoth`); a start that throws, then a plain worker
 * (`afterThrow`).
 */
async function limits(flags: string[]): Promise<Record<string, number>> {
  const script = `
    const { withYoungGeneration } = await import(${JSON.stringify(sourceUrl('src/api/post-thread/young-generation.ts'))});
    const { Worker } = await import('node:worker_threads');
    const { EventEmitter, once } = await import('node:events');
    const { getHeapStatistics } = await import('node:v8');
    const MiB = 1024 * 1024;
    const limits = { maxOldGenerationSizeMb: 64 };
    const worker = young => new Worker('setInterval(() => {}, 60_000)', {
      eval: true,
      resourceLimits: young ? { ...limits, maxYoungGenerationSizeMb: young } : limits,
    });
    const limitOf = async w => {
      await once(w, 'online');
      const { heap_size_limit } = await w.getHeapStatistics();
      await w.terminate();
      return heap_size_limit / MiB;
    };
    const out = { mainBefore: getHeapStatistics().heap_size_limit / MiB };
    out.raised = await limitOf(withYoungGeneration(8, worker));
    out.plainAfter = await limitOf(worker());
    const first = new EventEmitter();
    const second = new EventEmitter();
    withYoungGeneration(8, () => first);
    withYoungGeneration(8, () => second);
    first.emit('online');
    out.whileOther = await limitOf(worker());
    second.emit('exit', 1);
    out.afterBoth = await limitOf(worker());
    try {
      withYoungGeneration(8, () => { throw new Error('no worker'); });
    } catch {}
    out.afterThrow = await limitOf(worker());
    out.mainAfter = getHeapStatistics().heap_size_limit / MiB;
    process.stdout.write(JSON.stringify(out));
  `;
  return JSON.parse(await nodeScript(flags, script)) as Record<string, number>;
}

describe('api/post-thread/young-generation: the post thread’s own young generation', () => {
  const flags: Array<[string[], string | undefined]> = [
    [[], undefined],
    [['--max-semi-space-size=1'], '1'],
    [['--max_semi_space_size=2'], '2'],
    [['--max-semi-space-size=4', '--max-semi-space-size=1'], '1'],
    [['--max-old-space-size=512', '--inspect'], undefined],
    [['--max-semi-space-size-x=1'], undefined],
  ];
  for (const [args, value] of flags) {
    it(`semiSpaceFlag(${JSON.stringify(args)}) is ${value}`, () => {
      expect(semiSpaceFlag(args)).to.equal(value);
    });
  }

  const options: Array<[string, string[]]> = [
    ['', []],
    ['--a  --b=1 ', ['--a', '--b=1']],
    ['"--max-semi-space-size=1"', ['--max-semi-space-size=1']],
    ['--title="a b" --c', ['--title=a b', '--c']],
    ['"a\\"b\\\\c"', ['a"b\\c']],
  ];
  for (const [value, args] of options) {
    it(`NODE_OPTIONS ${JSON.stringify(value)} reads as ${JSON.stringify(args)}`, () => {
      expect(nodeOptionsArguments(value)).to.deep.equal(args);
    });
  }

  it('a young generation is three semi-spaces', () => {
    expect(youngGenerationMb(8)).to.equal(24);
  });

  it('under --max-semi-space-size=1 the worker still gets its semi-space; the flag is set back once the last start runs', async function () {
    this.timeout(60_000);
    // 64 MiB old generation, plus 3 semi-spaces of 8 or of 1 MiB
    const { mainBefore, mainAfter, ...workers } = await limits([
      '--max-semi-space-size=1',
    ]);
    expect(workers).to.deep.equal({
      raised: 64 + 24,
      plainAfter: 64 + 3,
      whileOther: 64 + 24,
      afterBoth: 64 + 3,
      afterThrow: 64 + 3,
    });
    expect(mainAfter).to.equal(mainBefore);
  });

  it('without the flag the worker gets its semi-space through resourceLimits', async function () {
    this.timeout(60_000);
    const seen = await limits([]);
    expect(seen.raised).to.equal(64 + 24);
    expect(seen.mainAfter).to.equal(seen.mainBefore);
  });
});
