// End-to-end benchmark: Postfix's smtp-source against the real daemon (queue mode, fsync) and a
// local stand-in API. Prints messages/s accepted and posted, accept latency, peak RSS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { installHaraka, startHaraka } from './reference.js';
import { TestRedis } from '../test/helpers/redis-server.js';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
/**
 * BENCH_DAEMON=<checkout>: run that checkout's daemon (built there, its dependencies installed)
 * instead of this one's, to compare two commits with the same harness.
 */
const DAEMON_ROOT = process.env.BENCH_DAEMON
  ? resolve(process.env.BENCH_DAEMON)
  : ROOT;
/**
 * Postfix's smtp-source: the system's, or the one `.ci/run` unpacks beside Exim (Debian's
 * postfix and exim4 packages conflict), or BENCH_SMTP_SOURCE.
 */
const SMTP_SOURCE =
  process.env.BENCH_SMTP_SOURCE ??
  [
    '/usr/sbin/smtp-source',
    join(ROOT, '.ci/.tools/postfix/usr/sbin/smtp-source'),
  ].find(path => existsSync(path)) ??
  '/usr/sbin/smtp-source';

interface Scenario {
  name: string;
  sizeBytes: number;
  messages: number;
  sessions: number;
  /** reuse each connection for many messages (smtp-source -d: "don't disconnect") */
  reuse: boolean;
  /**
   * Instead of smtp-source: bench/steady-client.ts, each session pausing a random 0..N ms
   * before each message (a steady load of about sessions / (N / 2000) messages per second, not
   * saturating); the latency columns are then the client's, from its final dot to the 250.
   */
  steadyPauseMs?: number;
}

// Long enough runs (tens of seconds) that the JIT's warm-up is a small part of what is measured.
const SCENARIOS: Scenario[] = [
  {
    name: '2 KiB, connections reused',
    sizeBytes: 2048,
    messages: 20000,
    sessions: 20,
    reuse: true,
  },
  {
    name: '2 KiB, one connection per message',
    sizeBytes: 2048,
    messages: 5000,
    sessions: 20,
    reuse: false,
  },
  {
    name: '100 KiB, connections reused',
    sizeBytes: 102400,
    messages: 5000,
    sessions: 20,
    reuse: true,
  },
  {
    // not saturated: the latency of the accept path itself, as the sender sees it
    name: '2 KiB, steady ~100 msg/s (50 sessions, 0-1 s pauses; client-side latency)',
    sizeBytes: 2048,
    messages: 1000,
    sessions: 50,
    reuse: true,
    steadyPauseMs: 1000,
  },
  {
    // flat out, as the first row, but timed by the client
    name: '2 KiB, 20 sessions flat out (client-side latency)',
    sizeBytes: 2048,
    messages: 20000,
    sessions: 20,
    reuse: true,
    steadyPauseMs: 0.001,
  },
];

export function freePort(): Promise<number> {
  return new Promise(resolve => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The stand-in API (bench/stand-in-api.ts); `env` is added to this process's environment. */
export async function startStandIn(
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/stand-in-api.ts'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    },
  );
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, port: Number(line.toString().trim()) };
}

export async function apiCount(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/count`);
  return ((await res.json()) as { posts: number }).posts;
}

export async function waitForPosts(
  port: number,
  count: number,
  limitMs: number,
): Promise<void> {
  const deadline = Date.now() + limitMs;
  while ((await apiCount(port)) < count) {
    if (Date.now() > deadline) {
      throw new Error(`only ${await apiCount(port)} of ${count} posted`);
    }
    await new Promise(r => setTimeout(r, 20));
  }
}

export interface Daemon {
  child: ChildProcess;
  smtpPort: number;
  httpPort: number;
  spool: string;
}

/** What a caller may change in the daemon's configuration file (bench/hostile-html.ts). */
export interface DaemonOptions {
  /** the `smtp:` line's value; the throughput table's by default */
  smtp?: string;
  /** more variables for the daemon (MAILBRIDGE_REDIS_URL for the fleet rows) */
  env?: Record<string, string>;
}

// A "*" route must say catchAll: true with NODE_ENV=production in releases that know the key
// (and a release before it refuses the unknown key), so the bench runs against either.
const SCHEMA = readFileSync(join(DAEMON_ROOT, 'src/config/schema.ts'), 'utf8');
const CATCH_ALL = SCHEMA.includes('catchAll') ? ', catchAll: true' : '';

// A release before sender authentication refuses the auth.dns key.
const KNOWS_DNS = SCHEMA.includes('dns: z.strictObject');

/**
 * The resolver sender authentication asks (`senderAuth: record` is the shipped default): a DNS
 * server on loopback (bench/loopback-dns.ts) publishing an SPF record that passes 127.0.0.1 and
 * a DMARC record (p=none) for the sender's domain, so that every lookup is answered at once, the
 * same on any machine. BENCH_DNS=system: the machine's resolvers instead.
 */
let loopbackDns: Promise<{ child: ChildProcess; address: string }> | undefined;
async function dnsConfig(): Promise<string[]> {
  if (process.env.BENCH_DNS === 'system' || !KNOWS_DNS) return [];
  loopbackDns ??= (async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'bench/loopback-dns.ts'],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    return { child, address: line.toString().trim() };
  })();
  const { address } = await loopbackDns;
  return [`auth: { dns: { servers: ["${address}"] } }`];
}

/** Stops the loopback DNS server, if one ran; the number of questions it was asked. */
async function stopLoopbackDns(): Promise<number | undefined> {
  if (!loopbackDns) return undefined;
  const { child } = await loopbackDns;
  child.stdin!.end();
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return Number(line.toString().trim());
}

async function startDaemon(
  apiPort: number,
  options: DaemonOptions = {},
): Promise<Daemon> {
  const spool = mkdtempSync(join(tmpdir(), 'mailbridge-bench-'));
  const smtpPort = await freePort();
  const httpPort = await freePort();
  const config = join(spool, 'bench.yaml');
  writeFileSync(
    config,
    [
      // BENCH_GREETING_DELAY=0: smtp.greetingDelayMs (default 100, smtp-server's pregreet pause)
      `smtp: ${
        options.smtp ??
        `{ maxClients: 200, maxMessageSize: 52428800${
          process.env.BENCH_GREETING_DELAY
            ? `, greetingDelayMs: ${Number(process.env.BENCH_GREETING_DELAY)}`
            : ''
        } }`
      }`,
      // BENCH_SENDER_AUTH=off: the route judges no sender (default: record, as shipped)
      `routes: [{ match: "*", mailbox_id: bench${CATCH_ALL}${
        process.env.BENCH_SENDER_AUTH
          ? `, senderAuth: ${process.env.BENCH_SENDER_AUTH}`
          : ''
      } }]`,
      // api.concurrency as configured by default (4) unless BENCH_CONCURRENCY says otherwise;
      // BENCH_POST_THREAD=0 posts from the main thread (api.workerThread: false)
      `api: { ${[
        process.env.BENCH_CONCURRENCY &&
          `concurrency: ${process.env.BENCH_CONCURRENCY}`,
        process.env.BENCH_POST_THREAD === '0' && 'workerThread: false',
      ]
        .filter(Boolean)
        .join(', ')} }`,
      ...(await dnsConfig()),
    ].join('\n'),
  );
  // BENCH_PROF=<dir>: write V8 CPU profiles of the daemon there (one per process)
  const profile = process.env.BENCH_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF]
    : [];
  const child = spawn(
    process.execPath,
    // as npm start runs it
    [
      ...profile,
      // npm start's; BENCH_NODE_FLAGS='--heap-growing-percent=0' gives V8's own factor back
      '--heap-growing-percent=100',
      // BENCH_NODE_FLAGS='--trace-gc': Node or V8 flags that NODE_OPTIONS does not take
      ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      // BENCH_SEMI_SPACE=2: another young generation size than npm start's
      `--max-semi-space-size=${process.env.BENCH_SEMI_SPACE ?? 1}`,
      // BENCH_PARALLEL_GC=1: V8's parallel scavenges, which npm start turns off
      ...(process.env.BENCH_PARALLEL_GC ? [] : ['--no-parallel-scavenge']),
      'dist/cli.js',
      'serve',
      '--config',
      config,
    ],
    {
      cwd: DAEMON_ROOT,
      // its log lines (level warn) to our stderr: the table alone goes to stdout, and a pipe
      // nobody read would fill and block the daemon
      stdio: ['ignore', process.stderr, 'inherit'],
      env: {
        PATH: process.env.PATH,
        NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? '',
        NODE_ENV: 'production',
        // as npm start and the Docker image run it
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
        MAILBRIDGE_API_URL: `http://127.0.0.1:${apiPort}/api/v1/message`,
        MAILBRIDGE_API_TOKEN: 'bench-token',
        MAILBRIDGE_SMTP_PORT: String(smtpPort),
        MAILBRIDGE_HTTP_PORT: String(httpPort),
        MAILBRIDGE_SPOOL_DIR: join(spool, 'spool'),
        MAILBRIDGE_LOG_LEVEL: 'warn',
        // BENCH_WORKERS=2 npm run bench: the daemon in cluster mode
        MAILBRIDGE_CLUSTER_WORKERS: process.env.BENCH_WORKERS ?? '1',
        ...options.env,
      },
    },
  );
  // a daemon that exits before it is ready (a port taken between freePort and its listen) is
  // reported, not waited for
  let exited: number | null | undefined;
  child.once('exit', code => (exited = code));
  for (;;) {
    if (exited !== undefined) {
      rmSync(spool, { recursive: true, force: true });
      throw new DaemonStartError(`daemon exited (code ${exited}) before ready`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 50));
  }
  return { child, smtpPort, httpPort, spool };
}

class DaemonStartError extends Error {}

/** Starts the daemon; once more (new ports) if it exits before it is ready. */
export async function startDaemonRetrying(
  apiPort: number,
  options: DaemonOptions = {},
): Promise<Daemon> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDaemon(apiPort, options);
    } catch (err) {
      if (!(err instanceof DaemonStartError) || attempt >= 3) throw err;
      console.error(`${err.message}; starting it again`);
    }
  }
}

export async function stopDaemon(daemon: Daemon): Promise<void> {
  daemon.child.kill('SIGTERM');
  await once(daemon.child, 'exit');
  rmSync(daemon.spool, { recursive: true, force: true });
}

/** Memory of a process from /proc: current and peak resident set, in MiB. */
export function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) =>
    Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** Resets the process's peak RSS (VmHWM) to its present RSS (Linux 4.0 and later). */
export function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // an older kernel: the peak since start stands
  }
}

/** CPU time (user + system) a process and its live children have used so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  // utime and stime (fields 14 and 15 of the whole line), in clock ticks of 10 ms
  let total = (Number(fields[11]) + Number(fields[12])) * 10;
  // a cluster's workers (Linux lists a thread's children here)
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .split(' ')
    .filter(Boolean);
  for (const child of children) total += cpuMs(Number(child));
  return total;
}

/** CPU time of this process's children that have been waited for (smtp-source), in ms. */
function waitedChildrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  // cutime and cstime (fields 16 and 17 of the whole line)
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** Quantile from a Prometheus histogram (linear within the bucket). */
async function acceptQuantiles(
  httpPort: number,
): Promise<{ p50: number; p99: number }> {
  const text = await (
    await fetch(`http://127.0.0.1:${httpPort}/metrics`)
  ).text();
  const buckets = [
    ...text.matchAll(/mailbridge_accept_seconds_bucket\{le="([^"]+)"\} (\d+)/g),
  ].map(m => ({
    le: m[1] === '+Inf' ? Infinity : Number(m[1]),
    count: Number(m[2]),
  }));
  const total = buckets.at(-1)?.count ?? 0;
  const quantile = (q: number) => {
    const rank = q * total;
    let prev = { le: 0, count: 0 };
    for (const b of buckets) {
      if (b.count >= rank) {
        if (b.le === Infinity) return prev.le;
        const share = (rank - prev.count) / Math.max(1, b.count - prev.count);
        return prev.le + share * (b.le - prev.le);
      }
      prev = b;
    }
    return NaN;
  };
  return { p50: quantile(0.5) * 1000, p99: quantile(0.99) * 1000 };
}

/** Drives the daemon with Postfix's smtp-source (no latencies of its own). */
function smtpSource(s: Scenario, port: number): null {
  const args = [
    '-s',
    String(s.sessions),
    '-m',
    String(s.messages),
    '-l',
    String(s.sizeBytes),
  ];
  if (s.reuse) args.push('-d');
  args.push(
    '-f',
    'bench@example.net',
    '-t',
    'support@example.com',
    `127.0.0.1:${port}`,
  );
  // the unpacked one finds its libraries beside it
  const libraries = resolve(SMTP_SOURCE, '../../lib/postfix');
  const result = spawnSync(SMTP_SOURCE, args, {
    stdio: 'inherit',
    env: existsSync(libraries)
      ? { ...process.env, LD_LIBRARY_PATH: libraries }
      : process.env,
  });
  if (result.status !== 0) {
    throw new Error(`smtp-source exited ${result.status}`);
  }
  return null;
}

/** Drives the daemon with bench/steady-client.ts; returns its end-of-DATA-to-250 times (ms). */
function steadyLoad(s: Scenario, port: number): number[] {
  const perSession = Math.ceil(s.messages / s.sessions);
  const result = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/steady-client.ts',
      ...[port, s.sessions, perSession, s.steadyPauseMs ?? 0, s.sizeBytes].map(
        String,
      ),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' },
  );
  if (result.status !== 0) {
    throw new Error(`steady-client exited ${result.status}`);
  }
  return (JSON.parse(result.stdout) as { times: number[] }).times;
}

function clientQuantiles(times: number[]): { p50: number; p99: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

/** What one run of a scenario measured. */
interface Measured {
  accepted: number;
  posted: number;
  p50: number;
  p99: number;
  peakRss: number;
  cpu: number;
  others: number;
  /** redis-server's CPU ms per message (fleet runs; 0 otherwise) */
  redis: number;
}

/** The median of each measure over several runs (this VM varies by ±15 % from run to run). */
function medians(runs: Measured[]): Measured {
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2
      ? sorted[mid]!
      : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const keys = Object.keys(runs[0]!) as Array<keyof Measured>;
  return Object.fromEntries(
    keys.map(k => [k, median(runs.map(r => r[k]))]),
  ) as unknown as Measured;
}

function row(name: string, s: Scenario, m: Measured): string {
  const ms = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(1));
  return `| ${name} | ${s.messages} | ${Math.round(m.accepted)} | ${Math.round(m.posted)} | ${ms(m.p50)} | ${ms(m.p99)} | ${Math.round(m.peakRss)} | ${m.cpu.toFixed(2)} | ${m.others.toFixed(2)} |`;
}

/** The server under test: mailbridge, or the Haraka reference (bench/reference.ts). */
/** `fleet`: mailbridge with state.redis.url, on a redis-server of its own (BENCH_REDIS=1) */
type Target = 'mailbridge' | 'haraka' | 'fleet';

interface Running {
  child: ChildProcess;
  smtpPort: number;
  /** the daemon's metrics port; none for the reference */
  httpPort?: number;
  /** the fleet's redis-server, whose CPU is measured apart */
  redisPid?: number;
  stop(): Promise<void>;
}

async function startTarget(target: Target, apiPort: number): Promise<Running> {
  if (target === 'haraka') return startHaraka(apiPort, await freePort());
  if (target === 'fleet') {
    const redis = await new TestRedis().start();
    const daemon = await startDaemonRetrying(apiPort, {
      env: { MAILBRIDGE_REDIS_URL: redis.url },
    });
    return {
      ...daemon,
      redisPid: redis.pid,
      stop: async () => {
        await stopDaemon(daemon);
        await redis.close();
      },
    };
  }
  const daemon = await startDaemonRetrying(apiPort);
  return { ...daemon, stop: () => stopDaemon(daemon) };
}

async function runScenario(
  s: Scenario,
  target: Target = 'mailbridge',
): Promise<Measured> {
  const api = await startStandIn();
  let daemon: Awaited<ReturnType<typeof startTarget>>;
  try {
    daemon = await startTarget(target, api.port);
  } catch (err) {
    api.child.kill();
    throw err;
  }
  try {
    return await measure(s, api, daemon);
  } finally {
    // a run that failed (smtp-source missing, posts that never came) leaves nothing running
    await daemon.stop();
    api.child.kill();
  }
}

async function measure(
  s: Scenario,
  api: Awaited<ReturnType<typeof startStandIn>>,
  daemon: Awaited<ReturnType<typeof startTarget>>,
): Promise<Measured> {
  const cpuBefore = cpuMs(daemon.child.pid!);
  const apiCpuBefore = cpuMs(api.child.pid!);
  const redisCpuBefore = daemon.redisPid ? cpuMs(daemon.redisPid) : 0;
  const sourceCpuBefore = waitedChildrenCpuMs();
  const started = Date.now();
  const clientTimes = s.steadyPauseMs
    ? steadyLoad(s, daemon.smtpPort)
    : smtpSource(s, daemon.smtpPort);
  const acceptedMs = Date.now() - started;
  await waitForPosts(api.port, s.messages, 300_000);
  const postedMs = Date.now() - started;
  const { p50, p99 } = clientTimes
    ? clientQuantiles(clientTimes)
    : daemon.httpPort
      ? await acceptQuantiles(daemon.httpPort)
      : { p50: NaN, p99: NaN };
  const { hwm } = memory(daemon.child.pid!);
  const cpuPerMessage = (cpuMs(daemon.child.pid!) - cpuBefore) / s.messages;
  const others =
    (cpuMs(api.child.pid!) -
      apiCpuBefore +
      waitedChildrenCpuMs() -
      sourceCpuBefore) /
    s.messages;
  const redis = daemon.redisPid
    ? (cpuMs(daemon.redisPid) - redisCpuBefore) / s.messages
    : 0;
  const rate = (ms: number) => (s.messages * 1000) / ms;
  return {
    accepted: rate(acceptedMs),
    posted: rate(postedMs),
    p50,
    p99,
    peakRss: hwm,
    cpu: cpuPerMessage,
    others,
    redis,
  };
}

async function largeAttachment(): Promise<string> {
  const api = await startStandIn();
  const daemon = await startDaemonRetrying(api.port);
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: daemon.smtpPort,
    ignoreTLS: true,
  });
  const send = (content: Buffer | string, i: number) =>
    transport.sendMail({
      from: 'bench@example.net',
      to: 'support@example.com',
      subject: `large ${i}`,
      text: 'see attachment',
      attachments: [{ filename: 'blob.bin', content }],
    });
  for (let i = 0; i < 20; i++) await send('warm-up', i); // warm up parsers and pools
  await waitForPosts(api.port, 20, 30_000);
  // the peak from here on, not the start-up's or the warm-up's (a peak before this message
  // would otherwise count as its growth)
  resetPeak(daemon.child.pid!);
  const before = memory(daemon.child.pid!);
  const raw = Buffer.alloc(20 * 1024 * 1024, 7);
  await send(raw, 99);
  await waitForPosts(api.port, 21, 120_000);
  const after = memory(daemon.child.pid!);
  transport.close();
  await stopDaemon(daemon);
  api.child.kill();
  return `| one message with a 20 MiB attachment | RSS before ${Math.round(before.rss)} MiB, peak ${Math.round(after.hwm)} MiB | growth ${Math.round(after.hwm - before.rss)} MiB (raw message ~27 MiB as base64 MIME) |`;
}

async function main(): Promise<void> {
  spawnSync('npm', ['run', 'build'], { cwd: DAEMON_ROOT, stdio: 'inherit' });
  const only = process.argv[2];
  console.log(
    `\ncluster.workers ${process.env.BENCH_WORKERS ?? '1'}; machine: ${cpus().length} x ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  console.log(
    '\n| scenario (queue mode, fsync, 20 sessions) | messages | accepted msg/s | posted msg/s | accept p50 ms | accept p99 ms | peak RSS MiB | daemon CPU ms/msg | load generator + stand-in CPU ms/msg |',
  );
  console.log(
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  // BENCH_SCENARIO=1 (or 1,3): only those rows of the throughput table
  const picked = process.env.BENCH_SCENARIO?.split(',').map(Number);
  // BENCH_REPEAT=3: each row run three times, the median of each column shown
  const repeat = Math.max(1, Number(process.env.BENCH_REPEAT ?? 1));
  // BENCH_REFERENCE=1: each smtp-source row also run against Haraka, in turn with mailbridge
  const reference = Boolean(process.env.BENCH_REFERENCE);
  if (reference) installHaraka();
  // BENCH_REDIS=1: each row also run with a Redis shared state (state.redis.url, a local
  // redis-server), in turn with the single instance: the cost of the shared dedupe and limits
  const fleet = Boolean(process.env.BENCH_REDIS);
  const spread: string[] = [];
  for (const [i, s] of SCENARIOS.entries()) {
    if (only && only !== 'throughput') break;
    if (picked && !picked.includes(i + 1)) continue;
    const runs: Measured[] = [];
    const refs: Measured[] = [];
    const fleets: Measured[] = [];
    // with the reference, the two take turns, so that both see the VM of the same minutes
    const withReference = reference && !s.steadyPauseMs;
    for (let r = 0; r < repeat; r++) {
      runs.push(await runScenario(s));
      if (withReference) refs.push(await runScenario(s, 'haraka'));
      if (fleet) fleets.push(await runScenario(s, 'fleet'));
    }
    console.log(row(s.name, s, medians(runs)));
    if (fleet) {
      console.log(row(`${s.name}: with Redis`, s, medians(fleets)));
      const single = medians(runs);
      const shared = medians(fleets);
      const cost = 100 - (100 * shared.posted) / single.posted;
      const extra = `daemon CPU ${(shared.cpu - single.cpu).toFixed(2)} ms/msg more, redis-server ${shared.redis.toFixed(2)} ms/msg`;
      spread.push(
        `- row ${i + 1}: single ${runs.map(m => Math.round(m.posted)).join(', ')}; with Redis ${fleets.map(m => Math.round(m.posted)).join(', ')} posted msg/s (Redis costs ${Math.round(cost)} %; ${extra})`,
      );
    }
    if (withReference) {
      console.log(row(`${s.name}: Haraka reference`, s, medians(refs)));
      const share = (100 * medians(runs).posted) / medians(refs).posted;
      spread.push(
        `- row ${i + 1}: mailbridge ${runs.map(m => Math.round(m.posted)).join(', ')}; Haraka ${refs.map(m => Math.round(m.posted)).join(', ')} posted msg/s (mailbridge at ${Math.round(share)} % of Haraka)`,
      );
    } else if (repeat > 1) {
      const posted = runs.map(m => Math.round(m.posted)).join(', ');
      spread.push(`- row ${i + 1}: posted msg/s of each run ${posted}`);
    }
  }
  if (spread.length > 0) {
    console.log(`\nmedians of ${repeat} run(s); posted msg/s of each run:`);
    console.log(spread.join('\n'));
  }
  if (!only || only === 'memory') {
    console.log('\n| memory | measured | |');
    console.log('| --- | --- | --- |');
    console.log(await largeAttachment());
  }
  const questions = await stopLoopbackDns();
  if (questions !== undefined) {
    console.log(
      `\nsender authentication asked the loopback DNS server ${questions} questions`,
    );
  }
}

// run when started (npm run bench), not when another bench script imports the helpers above
if (
  process.argv[1] &&
  realpathSync(resolve(process.argv[1])) ===
    realpathSync(fileURLToPath(import.meta.url))
) {
  main().catch(err => {
    console.error(err);
    process.exit(1);
  });
}
