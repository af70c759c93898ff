// The post thread's young generation: larger than the main thread's. V8 frees a message's
// short-lived objects (decoded text, the JSON body, stream chunks) in scavenges, which copy what
// is still alive; a parse spans many turns of the event loop, so in a 1 MiB semi-space (npm
// start's `--max-semi-space-size=1`, kept for the main thread's RSS under large messages) about
// 40 % of a 100 KiB message is copied at each of one or two scavenges a message. With 8 MiB the
// post thread scavenges far less often: row 3 of the benchmark used about 10 % less CPU a
// message, row 1 about 9 % (docs/benchmark.md).
//
// V8 takes a worker's `resourceLimits.maxYoungGenerationSizeMb` only when the process has no
// `--max-semi-space-size` (nor `--max-heap-size`, which the daemon does not use): the flag,
// process-wide, overrides it. So when the flag is given, it is raised while the worker's isolate
// is made (V8 reads it then, once, before the worker runs) and set back as soon as the worker
// runs: the main thread's heap, made long before, keeps its own size.
import { setFlagsFromString } from 'node:v8';
import type { Worker } from 'node:worker_threads';

/** The post thread's semi-space, in MiB (V8's young generation is three of them). */
export const POST_THREAD_SEMI_SPACE_MB = 8;

/** `resourceLimits.maxYoungGenerationSizeMb` for a semi-space of `semiSpaceMb`. */
export function youngGenerationMb(semiSpaceMb: number): number {
  return 3 * semiSpaceMb;
}

/**
 * The value of the last `--max-semi-space-size=N` in `args` (the later wins), or undefined when
 * none is given; V8's underscores too. Node takes no value as a separate argument here.
 */
export function semiSpaceFlag(args: readonly string[]): string | undefined {
  let value: string | undefined;
  for (const arg of args) {
    const match = /^--max[-_]semi[-_]space[-_]size=(.*)$/.exec(arg);
    if (match) value = match[1];
  }
  return value;
}

/**
 * NODE_OPTIONS' arguments as Node reads them: split at spaces, except within double quotes, a
 * backslash taking the next character as it is.
 */
export function nodeOptionsArguments(options: string): string[] {
  const out: string[] = [];
  let current: string | undefined;
  let quoted = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === '\\' && quoted && i + 1 < options.length) {
      current = (current ?? '') + options[++i];
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === ' ' && !quoted) {
      if (current !== undefined) out.push(current);
      current = undefined;
    } else {
      current = (current ?? '') + c;
    }
  }
  if (current !== undefined) out.push(current);
  return out;
}

/** Node's arguments in the order Node applies them: NODE_OPTIONS', then the command line's. */
function nodeArguments(): string[] {
  return [
    ...nodeOptionsArguments(process.env.NODE_OPTIONS ?? ''),
    ...process.execArgv,
  ];
}

/** Workers starting with the flag raised: it is set back when the last of them runs. */
let starting = 0;

/**
 * Starts a worker with `start` (given the young generation to put into its resourceLimits),
 * its semi-space `semiSpaceMb` whatever the process's flag: see the top of this file.
 */
export function withYoungGeneration(
  semiSpaceMb: number,
  start: (maxYoungGenerationSizeMb: number) => Worker,
  args: readonly string[] = nodeArguments(),
): Worker {
  const processValue = semiSpaceFlag(args);
  if (processValue === undefined) return start(youngGenerationMb(semiSpaceMb));
  if (starting++ === 0) {
    setFlagsFromString(`--max-semi-space-size=${semiSpaceMb}`);
  }
  let started = false;
  const done = (): void => {
    if (started) return;
    started = true;
    if (--starting === 0) {
      setFlagsFromString(`--max-semi-space-size=${processValue}`);
    }
  };
  let worker: Worker;
  try {
    worker = start(youngGenerationMb(semiSpaceMb));
  } catch (err) {
    done();
    throw err;
  }
  // its isolate exists once it runs; one that exits first (an error ends in 'exit' too) has
  // none to make any more
  worker.once('online', done);
  worker.once('exit', done);
  return worker;
}
