// Hostile HTML (issue 16, defect 2): eight messages of 20 MiB of nested <div> sent at once, over
// eight SMTP connections, while a second process opens a new connection to the SMTP port every
// 200 ms and times its 220 greeting. Prints the daemon's RSS before, its peak RSS growth, the
// greeting times, the time until all eight were posted, and the content one of them was posted
// with. `npm run bench:hostile`; loopback only, bounded, stops by itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import {
  apiCount,
  memory,
  resetPeak,
  ROOT,
  startDaemonRetrying,
  startStandIn,
  waitForPosts,
  type Daemon,
} from './run.js';

const MESSAGES = 8;
/** the HTML of each message, decoded: 20 MiB */
const HTML_BYTES = 20 * 1024 * 1024;
/** config/default.yaml's smtp.maxMessageSize, which this run keeps */
const DEFAULT_MAX_MESSAGE_SIZE = 26214400;
const PROBE_EVERY_MS = 200;
/** from the first byte sent to the end of the run, whatever is posted by then */
const DEADLINE_MS = 180_000;
/** a probe not greeted within this is counted as such (and as its wait so far) */
const PROBE_TIMEOUT_MS = 90_000;
const MAX_OPEN_PROBES = 40;

/**
 * One message: 20 MiB of `<div>d` nested about 1.75 million deep, then their closing tags, as
 * one text/html part in quoted-printable (the HTML is ASCII without `=`: only soft line breaks
 * every 75 characters, so 20.8 MiB on the wire, under the default size limit; base64 would be
 * 27 MiB, over it).
 */
function hostileMessage(html: string, i: number): Buffer {
  const lines: string[] = [];
  for (let at = 0; at < html.length; at += 75) {
    lines.push(html.slice(at, at + 75));
  }
  const head = [
    'From: bench@example.net',
    'To: support@example.com',
    `Subject: hostile html ${i}`,
    `Message-ID: <hostile-${i}-${Date.now()}@bench.example>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
  ].join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${lines.join('=\r\n')}\r\n`, 'latin1');
}

interface Probe {
  /** when it connected (Date.now()) */
  at: number;
  /** ms from connect() to the greeting line, or to the end for one still waiting */
  ms: number;
  /** the greeting's code (220, or 421 when over maxClients); 0: none came (timeout or end) */
  code: number;
}

interface ProbeReport {
  probes: Probe[];
  /** the daemon's RSS (MiB) at each tick */
  rss: Array<{ at: number; rss: number }>;
}

/**
 * The prober, in a process of its own (the sender's CPU work would otherwise delay its
 * timers): a new connection every PROBE_EVERY_MS until its stdin closes or maxMs passes, then
 * one JSON line, the probes and the daemon's RSS at each tick.
 */
function probeMain(port: number, pid: number, maxMs: number): void {
  const started = performance.now();
  const now = () => performance.now() - started;
  const epoch = Date.now() - now();
  const probes: Probe[] = [];
  const rss: ProbeReport['rss'] = [];
  const open = new Map<
    number,
    { at: number; socket: ReturnType<typeof connect> }
  >();
  let next = 0;
  const probe = () => {
    const id = next++;
    const at = now();
    const socket = connect(port, '127.0.0.1');
    open.set(id, { at, socket });
    let text = '';
    const done = (code: number) => {
      if (!open.delete(id)) return;
      probes.push({ at: epoch + at, ms: now() - at, code });
      if (code === 220) socket.end('QUIT\r\n');
      socket.destroy();
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) done(Number(text.slice(0, 3)) || 0);
    });
    socket.on('error', () => done(0));
    socket.on('close', () => done(0));
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(0));
  };
  const tick = () => {
    try {
      rss.push({ at: Date.now(), rss: memory(pid).rss });
    } catch {
      // the daemon is gone
    }
    if (open.size < MAX_OPEN_PROBES) probe();
  };
  const timer = setInterval(tick, PROBE_EVERY_MS);
  tick();
  const finish = () => {
    clearInterval(timer);
    clearTimeout(limit);
    for (const [id, { at, socket }] of open) {
      open.delete(id);
      probes.push({ at: epoch + at, ms: now() - at, code: 0 });
      socket.destroy();
    }
    process.stdout.write(`${JSON.stringify({ probes, rss })}\n`, () =>
      process.exit(0),
    );
  };
  const limit = setTimeout(finish, maxMs);
  process.stdin.on('end', finish).resume();
  process.stdout.write('ready\n');
}

async function startProber(port: number, pid: number): Promise<ChildProcess> {
  const prober = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      'probe',
      String(port),
      String(pid),
      String(DEADLINE_MS + 30_000),
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  prober.stdout!.setEncoding('utf8');
  await once(prober.stdout!, 'data'); // ready
  return prober;
}

async function proberReport(prober: ChildProcess): Promise<ProbeReport> {
  let out = '';
  prober.stdout!.on('data', (c: string) => (out += c));
  prober.stdin!.end();
  await once(prober, 'exit');
  return JSON.parse(out.trim().split('\n').at(-1)!) as ProbeReport;
}

/** CPU (user + system, ms) of each thread of a process, by thread name and id. */
function threadCpu(pid: number): Map<string, number> {
  const result = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const dir = `/proc/${pid}/task/${tid}`;
      const name = readFileSync(`${dir}/comm`, 'utf8').trim();
      const fields = readFileSync(`${dir}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ');
      result.set(
        `${name} (${tid})`,
        (Number(fields[11]) + Number(fields[12])) * 10,
      );
    } catch {
      // a thread that ended
    }
  }
  return result;
}

async function stopHard(daemon: Daemon): Promise<void> {
  daemon.child.kill('SIGTERM');
  const exited = once(daemon.child, 'exit');
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
  rmSync(daemon.spool, { recursive: true, force: true });
}

function quantile(sorted: number[], q: number): number {
  return (
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
  );
}

async function main(): Promise<void> {
  const build = spawnSync('npm', ['run', 'build'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (build.status !== 0) throw new Error('npm run build failed');
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: ROOT,
    encoding: 'utf8',
  }).stdout.trim();
  console.log(
    `\ncommit ${commit}; ${new Date().toISOString()}; machine: ${cpus().length} x ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );

  const level = '<div>d';
  const depth = Math.floor(HTML_BYTES / (level.length + '</div>'.length));
  const html = level.repeat(depth) + '</div>'.repeat(depth);
  const raws = Array.from({ length: MESSAGES }, (_, i) =>
    hostileMessage(html, i),
  );
  const rawSize = raws[0]!.length;
  if (rawSize > DEFAULT_MAX_MESSAGE_SIZE) {
    throw new Error(`${rawSize} bytes: over the default smtp.maxMessageSize`);
  }
  console.log(
    `${MESSAGES} messages of ${html.length} characters of HTML (<div>d nested ${depth} deep), ${rawSize} bytes each as quoted-printable MIME (smtp.maxMessageSize at its default, ${DEFAULT_MAX_MESSAGE_SIZE})`,
  );

  const api = await startStandIn({ STAND_IN_KEEP_LAST: '1' });
  // the default maxMessageSize (25 MiB); maxClients as the other benchmarks, above the probes
  const daemon = await startDaemonRetrying(api.port, {
    smtp: '{ maxClients: 200 }',
  });
  const pid = daemon.child.pid!;
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: daemon.smtpPort,
    ignoreTLS: true,
    // a stalled daemon is measured, not given up on by the sender
    connectionTimeout: DEADLINE_MS,
    greetingTimeout: DEADLINE_MS,
    socketTimeout: DEADLINE_MS,
  });
  const envelope = {
    from: 'bench@example.net',
    to: ['support@example.com'],
  };
  // warm up the parsers, the post thread and the pools; the peak is reset after it
  const warm = 5;
  for (let i = 0; i < warm; i++) {
    await transport.sendMail({
      ...envelope,
      subject: `warm-up ${i}`,
      html: `<div><p>warm-up ${i}</p></div>`,
    });
  }
  await waitForPosts(api.port, warm, 30_000);
  await new Promise(r => setTimeout(r, 1000));
  resetPeak(pid);
  const before = memory(pid);
  const cpuBefore = threadCpu(pid);

  const prober = await startProber(daemon.smtpPort, pid);
  await new Promise(r => setTimeout(r, 1000)); // a few greetings of the idle daemon first
  const started = performance.now();
  const startedAt = Date.now();
  const sent: Array<number | string> = Array.from({ length: MESSAGES });
  const sends = raws.map((raw, i) =>
    transport.sendMail({ envelope, raw }).then(
      () => (sent[i] = performance.now() - started),
      (err: Error) => (sent[i] = err.message),
    ),
  );
  let postedMs: number | undefined;
  while (performance.now() - started < DEADLINE_MS) {
    if ((await apiCount(api.port)) >= warm + MESSAGES) {
      postedMs = performance.now() - started;
      break;
    }
    await new Promise(r => setTimeout(r, 100));
  }
  const posted = (await apiCount(api.port)) - warm;
  // the sends have ended by now unless the deadline passed
  await Promise.race([
    Promise.all(sends),
    new Promise(r => setTimeout(r, 1000)),
  ]);
  const report = await proberReport(prober);
  const after = memory(pid);
  const cpuAfter = threadCpu(pid);
  const last = JSON.parse(
    (await (await fetch(`http://127.0.0.1:${api.port}/last`)).text()) || '{}',
  ) as { content?: string; subject?: string };
  transport.close();
  await stopHard(daemon);
  api.child.kill();

  // greetings max per 5 s from the first send, to see when the stall was
  const windows = new Map<number, number>();
  for (const p of report.probes) {
    const w = Math.floor((p.at - startedAt) / 5000);
    if (w >= 0) windows.set(w, Math.max(windows.get(w) ?? 0, p.ms));
  }
  const times = report.probes.map(p => p.ms).sort((a, b) => a - b);
  // greetings by code: 421 (maxClients), 0 (closed or not greeted by the end)
  const codes: Record<number, number> = {};
  for (const p of report.probes) codes[p.code] = (codes[p.code] ?? 0) + 1;
  const worst = report.probes.reduce(
    (w, p) => (p.ms > w.ms ? p : w),
    report.probes[0]!,
  );
  const peakRss = report.rss.reduce((w, s) => (s.rss > w.rss ? s : w), {
    at: 0,
    rss: 0,
  });
  const secs = (ms: number | undefined) =>
    ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`;
  console.log(`\nRSS before: ${before.rss.toFixed(0)} MiB`);
  console.log(
    `peak RSS (VmHWM): ${after.hwm.toFixed(0)} MiB; growth ${(after.hwm - before.rss).toFixed(0)} MiB (target < 300); RSS at the end ${after.rss.toFixed(0)} MiB`,
  );
  console.log(
    `RSS sampled every ${PROBE_EVERY_MS} ms: highest ${peakRss.rss.toFixed(0)} MiB at ${secs(peakRss.at - startedAt)} after the first send`,
  );
  console.log(
    `greetings: ${times.length} probes, max ${times.at(-1)?.toFixed(0)} ms (at ${secs(worst.at - startedAt)} after the first send), p50 ${quantile(times, 0.5).toFixed(0)} ms, p99 ${quantile(times, 0.99).toFixed(0)} ms, ${times.filter(t => t > 1000).length} over 1 s (target: none), ${report.probes.filter(p => p.code !== 220).length} without a 220 ${JSON.stringify(codes)}`,
  );
  console.log(
    `greeting max per 5 s (ms): ${[...windows]
      .sort((x, y) => x[0] - y[0])
      .map(([, ms]) => ms.toFixed(0))
      .join(' ')}`,
  );
  console.log(
    `posted: ${posted} of ${MESSAGES}${postedMs === undefined ? ` by the deadline (${secs(DEADLINE_MS)})` : `, all within ${secs(postedMs)} of the first send`}`,
  );
  console.log(
    `each send (first byte to 250): ${sent.map(s => (typeof s === 'number' ? secs(s) : (s ?? 'still sending'))).join(', ')}`,
  );
  const content = last.content ?? '';
  console.log(
    `content of the last post (${last.subject}): ${content.length} characters; it ends: ${JSON.stringify(content.slice(-240))}`,
  );
  const cpu = [...cpuAfter]
    .map(([name, ms]) => [name, ms - (cpuBefore.get(name) ?? 0)] as const)
    .filter(([, ms]) => ms >= 100)
    .sort((a, b) => b[1] - a[1]);
  console.log(
    `daemon CPU by thread: ${cpu.map(([name, ms]) => `${name} ${(ms / 1000).toFixed(1)} s`).join(', ')}`,
  );
  console.log(
    `daemon RSS over time (MiB, every 5 s from the first send): ${report.rss
      .filter(s => s.at >= startedAt)
      .filter((_, i) => i % 25 === 0)
      .map(s => s.rss.toFixed(0))
      .join(' ')}`,
  );
}

if (process.argv[2] === 'probe') {
  const [port, pid, maxMs] = process.argv.slice(3).map(Number) as [
    number,
    number,
    number,
  ];
  probeMain(port, pid, maxMs);
} else {
  main().catch(err => {
    console.error(err);
    process.exit(1);
  });
}
