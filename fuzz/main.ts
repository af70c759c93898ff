// `npm run fuzz -- [--cases N] [--seed S] [--case N] [--replay FILE...] [--connections C]
// [--rss-limit MiB] [--failures DIR] [--json FILE]`: mutated corpus messages over SMTP to the
// real daemon (see docs/fuzzing.md). Exit 0 when every check passed, 1 on a failure, 2 on bad usage.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FAILURES_DIR } from './failures.js';
import { DEFAULT_RSS_LIMIT_MIB } from './fuzz-run.js';
import { formatReport, passed } from './report.js';
import { randomSeed } from './rng.js';
import { runFuzz, type RunOptions } from './run-fuzz.js';

const USAGE = `usage: npm run fuzz -- [options]
  --cases N         generated cases to send (default 10000)
  --seed S          the seed (default: a random one, printed first)
  --case N          start at case N of the seed (with --seed): N alone, or
                    with --cases M the M cases from N on
  --replay FILE     send this message file as it is (repeatable; no generated cases)
  --connections C   SMTP connections at once (default 8)
  --rss-limit MIB   how far the daemon's RSS may grow over its start
                    (default ${DEFAULT_RSS_LIMIT_MIB})
  --failures DIR    where failing messages are written (default ${FAILURES_DIR}/)
  --json FILE       also write the report as JSON`;

function integer(
  value: string | undefined,
  name: string,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${name} must be a whole number`);
  }
  return n;
}

function parse(argv: string[]): { options: RunOptions; json?: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      cases: { type: 'string' },
      seed: { type: 'string' },
      case: { type: 'string' },
      replay: { type: 'string', multiple: true },
      connections: { type: 'string' },
      'rss-limit': { type: 'string' },
      failures: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const first =
    values.case === undefined ? undefined : integer(values.case, '--case', 0);
  if (first !== undefined && values.seed === undefined) {
    throw new Error('--case needs the --seed it was made with');
  }
  const seed = integer(values.seed, '--seed', randomSeed());
  if (seed > 0xffffffff) throw new Error('--seed must be below 2^32');
  return {
    options: {
      seed,
      cases:
        first === undefined || values.cases !== undefined
          ? integer(values.cases, '--cases', 10_000)
          : 1,
      ...(first === undefined ? {} : { first }),
      ...(values.replay ? { replay: values.replay.map(f => resolve(f)) } : {}),
      connections: integer(values.connections, '--connections', 8),
      rssLimitMiB: integer(
        values['rss-limit'],
        '--rss-limit',
        DEFAULT_RSS_LIMIT_MIB,
      ),
      failuresDir: resolve(values.failures ?? FAILURES_DIR),
      progress: line => console.log(line),
    },
    ...(values.json ? { json: values.json } : {}),
  };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { options, json } = parsed;
  console.log(
    `fuzz: seed ${options.seed} (repeat with --seed ${options.seed}); failures go to ` +
      `${options.failuresDir}`,
  );
  const report = await runFuzz(options);
  console.log(formatReport(report));
  if (json) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  return passed(report) ? 0 : 1;
}

main().then(
  code => process.exit(code),
  err => {
    console.error(err);
    process.exit(1);
  },
);
