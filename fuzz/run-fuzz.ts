// One fuzz run: the stand-in API and the daemon started, the cases sent over several raw SMTP
// connections while the daemon's RSS is sampled, a clean message last (it must still be taken),
// then the spool drained and the books checked. `npm run fuzz` and the CI test both run this.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryOf, resetPeak, DaemonProcess } from './daemon-process.js';
import { DEFAULT_RSS_LIMIT_MIB, FuzzRun, type RunOptions } from './fuzz-run.js';
import type { FuzzReport } from './report.js';
import { StandInApi } from './stand-in-api.js';

export type { RunOptions } from './fuzz-run.js';

/** Runs the cases against a fresh daemon and stand-in API; everything is stopped at the end. */
export async function runFuzz(options: RunOptions): Promise<FuzzReport> {
  const started = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'mailbridge-fuzz-'));
  const api = await new StandInApi().start();
  const daemon = new DaemonProcess(workDir, api.url);
  const run = new FuzzRun(options, api, daemon);
  let sampler: NodeJS.Timeout | undefined;
  let stopped = false;
  void daemon.exited.then(exit => {
    if (!stopped) run.crashed(exit);
  });
  try {
    await daemon.started(120_000);
    resetPeak(daemon.pid);
    run.startRss = run.peakRss = memoryOf(daemon.pid)?.rss ?? 0;
    sampler = setInterval(() => run.sampleRss(), 200);
    options.progress?.(
      `seed ${options.seed}: ${run.total} cases, daemon pid ${daemon.pid} on port ` +
        `${daemon.smtpPort}, RSS ${run.startRss.toFixed(1)} MiB`,
    );
    await run.sendAll();
    let books: ReturnType<FuzzRun['settle']> | undefined;
    if (!run.stopping) {
      books = run.settle(await run.drain());
      await checkServing(run, daemon);
    }
    clearInterval(sampler);
    run.sampleRss();
    run.peakRss = Math.max(run.peakRss, memoryOf(daemon.pid)?.hwm ?? 0);
    stopped = true;
    const exit = await daemon.stop();
    if (!run.stopping && exit.code !== 0) {
      const detail = `SIGTERM: exit code ${exit.code}, signal ${exit.signal}`;
      run.fail({ kind: 'shutdown', detail });
    }
    for (const [problem, count] of api.problemCounts) {
      const example = api.problems.find(p => p.problem === problem);
      const detail = `${count} bodies: ${problem}; the first: ${example?.excerpt}`;
      run.fail({ kind: 'payload', detail });
    }
    for (const [message, count] of Object.entries(daemon.errorCounts)) {
      const detail = `the daemon logged "${message}" ${count} times`;
      run.fail({ kind: 'error-log', detail });
    }
    return {
      seed: options.seed,
      cases: run.sent,
      durationMs: Date.now() - started,
      codes: run.codes,
      ...(books ? { accounting: books.accounting } : {}),
      deadByApi: books?.deadByApi ?? 0,
      deadOther: books?.deadOther ?? [],
      retried: api.unavailable,
      startRssMiB: run.startRss,
      peakRssMiB: run.peakRss,
      endRssMiB: run.rss,
      rssLimitMiB: options.rssLimitMiB ?? DEFAULT_RSS_LIMIT_MIB,
      mutators: run.mutators,
      slowest: run.slowest,
      errorLines: daemon.errorCounts,
      payloadProblems: api.problems,
      failures: run.failures,
    };
  } finally {
    stopped = true;
    clearInterval(sampler);
    await daemon.stop(5000);
    await api.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** The daemon's /healthz must still answer 200. */
async function checkServing(
  run: FuzzRun,
  daemon: DaemonProcess,
): Promise<void> {
  try {
    const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/healthz`);
    if (res.status !== 200) {
      run.fail({
        kind: 'not-serving',
        detail: `/healthz answered ${res.status}`,
      });
    }
  } catch (err) {
    run.fail({
      kind: 'not-serving',
      detail: `/healthz: ${(err as Error).message}`,
    });
  }
}
