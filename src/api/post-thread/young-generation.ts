// The post thread's young generation: larger than the main thread's. V8 frees a message's
// short-lived objects (decoded text, the JSON body, stream chunks) in scavenges, which copy what
// is still alive; a parse spans many turns of the event loop, so in a 1 MiB semi-space (npm
// start's `--max-semi-space-size=1`, kept for the main thread's RSS under large messages) about
// 40 % of a 100 KiB message is copied at each of one or two scavenges a message. With 8 MiB the
// post thread scavenges far less often: row 3 of the benchmark used about 10 % less CPU a
// message, row 1 about 9 % (docs/benchmark.md).
//
// V8 takes a worker's `resourceLimits.maxYoungGenerationSizeMb` only when the process has no
// `--max-semi-space-size`: the flag, process-wide, overrides it. So when the flag is given, it
// is raised while the worker's isolate is made (V8 reads it then, once) and set back as soon as
// the worker runs: the main thread's heap, made long before, keeps its own size.
import { setFlagsFromString } from 'node:v8';
import type { Worker } from 'node:worker_threads';

/** The post thread's semi-space, in MiB (V8's young generation is three of them). */
export const POST_THREAD_SEMI_SPACE_MB = 8;

/** `resourceLimits.maxYoungGenerationSizeMb` for a semi-space of `semiSpaceMb`. */
export function youngGenerationMb(semiSpaceMb: number): number {
  return 3 * semiSpaceMb;
}

/**
 * The value of the last `--max-semi-space-size` in `args` (Node's own arguments, then
 * NODE_OPTIONS': the later wins), or undefined when none is given. Both spellings, `=N` and
 * `N` as the next argument, and V8's underscores.
 */
export function semiSpaceFlag(args: readonly string[]): string | undefined {
  let value: string | undefined;
  args.forEach((arg, n) => {
    const match = /^--max[-_]semi[-_]space[-_]size(?:=(.*))?$/.exec(arg);
    if (match) value = match[1] ?? args[n + 1];
  });
  return value;
}

/** Node's arguments and NODE_OPTIONS' (split at spaces, as Node splits them unquoted). */
function nodeArguments(): string[] {
  return [
    ...process.execArgv,
    ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean),
  ];
}

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
  setFlagsFromString(`--max-semi-space-size=${semiSpaceMb}`);
  let worker: Worker;
  const restore = (): void =>
    setFlagsFromString(`--max-semi-space-size=${processValue}`);
  try {
    worker = start(youngGenerationMb(semiSpaceMb));
  } catch (err) {
    restore();
    throw err;
  }
  // its isolate exists once it runs; one that fails before that has none to make any more
  let restored = false;
  const once = (): void => {
    if (restored) return;
    restored = true;
    restore();
  };
  worker.once('online', once);
  worker.once('error', once);
  worker.once('exit', once);
  return worker;
}
