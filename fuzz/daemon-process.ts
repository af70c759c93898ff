// The daemon under fuzz: `mailbridge serve` from src/ (through tsx) as a child process of its own,
// so that its RSS can be read from /proc and a crash is seen as the process exiting. Its JSON log
// lines are followed for the outcome of each message (delivered, dead) and for error lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cases.js';

/** How the daemon ended. */
export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The largest message the daemon takes in a fuzz run (smaller than the default, to reach it). */
export const FUZZ_MAX_MESSAGE_SIZE = 4 * 1024 * 1024;

/** The configuration a fuzz run gives the daemon (YAML), around the stand-in API's URL. */
export function fuzzConfig(apiUrl: string, spoolDir: string): string {
  return [
    'smtp:',
    '  host: 127.0.0.1',
    '  port: 0',
    `  maxMessageSize: ${FUZZ_MAX_MESSAGE_SIZE}`,
    '  maxClients: 100',
    '  closeTimeoutMs: 2000',
    'http:',
    '  host: 127.0.0.1',
    '  port: 0',
    'api:',
    `  url: ${JSON.stringify(apiUrl)}`,
    '  token: fuzz-token',
    '  timeoutMs: 30000',
    'spool:',
    `  dir: ${JSON.stringify(spoolDir)}`,
    'delivery:',
    // mutated messages often keep the Message-ID, sender and body of another case: each must
    // still be posted, or the count of posts could not be told from the count of 250s
    '  dedupeWindowMs: 0',
    '  retry:',
    '    initialDelayMs: 100',
    '    maxDelayMs: 500',
    '    maxAgeMs: 3600000',
    'log:',
    '  level: info',
    'routes:',
    "  - { match: '*', mailbox_id: fuzz }",
    '',
  ].join('\n');
}

/** Memory of a process from /proc, in MiB: resident now and its peak; undefined once gone. */
export function memoryOf(
  pid: number,
): { rss: number; hwm: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string) =>
    Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** Resets a process's peak RSS (VmHWM) to its present RSS, where the kernel allows it. */
export function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // an older kernel, or not allowed: the peak since start stands
  }
}

export class DaemonProcess {
  /** queue ids of the "message delivered" lines, with the Message-ID each logged */
  readonly delivered = new Map<string, string>();
  /** queue ids of the "message dead" lines, with their reason */
  readonly dead = new Map<string, string>();
  /** how many "delivery deferred" lines (API 503s, retried), by queue id */
  readonly deferredIds = new Map<string, number>();
  /** the error lines, the first 200 */
  readonly errors: Array<Record<string, unknown>> = [];
  /** every error line's message, and how many times */
  readonly errorCounts: Record<string, number> = {};
  exit?: DaemonExit;
  readonly exited: Promise<DaemonExit>;
  smtpPort = 0;
  httpPort = 0;
  private stderrText = '';
  private partial = '';
  private readonly child: ChildProcess;
  private onStarted?: () => void;

  constructor(
    readonly workDir: string,
    apiUrl: string,
  ) {
    const configFile = join(workDir, 'fuzz.yaml');
    writeFileSync(configFile, fuzzConfig(apiUrl, this.spoolDir));
    this.child = spawn(
      process.execPath,
      // as npm start runs it, from the sources through tsx
      [
        '--max-semi-space-size=1',
        '--no-parallel-scavenge',
        '--heap-growing-percent=100',
        // FUZZ_NODE_FLAGS='--max-old-space-size=256': Node or V8 flags for the daemon
        ...(process.env.FUZZ_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
        '--import',
        'tsx',
        'src/cli.ts',
        'serve',
        '--config',
        configFile,
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          NODE_ENV: 'test',
          UV_THREADPOOL_SIZE: '16',
          // glibc's arenas (one per thread by default) change how much freed memory RSS keeps
          ...(process.env.MALLOC_ARENA_MAX
            ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX }
            : {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    // FUZZ_DAEMON_LOG=FILE: the daemon's stdout (its log lines, and --trace-gc's) kept there
    const copy = process.env.FUZZ_DAEMON_LOG
      ? createWriteStream(process.env.FUZZ_DAEMON_LOG)
      : undefined;
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      copy?.write(chunk);
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop() ?? '';
      lines.forEach(line => this.onLine(line));
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.stderrText.length < 100_000) this.stderrText += chunk;
    });
    this.exited = new Promise(resolve => {
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.onStarted?.();
        resolve(this.exit);
      });
    });
  }

  get spoolDir(): string {
    return join(this.workDir, 'spool');
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** What the daemon wrote to stderr (its first 100 kB). */
  stderr(): string {
    return this.stderrText;
  }

  /** Resolves once "mailbridge started" is logged; rejects if it exits or `timeoutMs` pass. */
  async started(timeoutMs: number): Promise<void> {
    if (this.smtpPort) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`the daemon did not start within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.onStarted = () => {
        clearTimeout(timer);
        if (this.smtpPort) resolve();
        else {
          reject(
            new Error(
              `the daemon exited (${JSON.stringify(this.exit)}) before it started: ` +
                this.stderrText.slice(0, 2000),
            ),
          );
        }
      };
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  async stop(graceMs = 30_000): Promise<DaemonExit> {
    if (this.exit) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The main thread's heap in use and external memory, from /metrics ('' when unreadable). */
  async heapSummary(): Promise<string> {
    try {
      const url = `http://127.0.0.1:${this.httpPort}/metrics`;
      const text = await (await fetch(url)).text();
      const mib = (name: string) => {
        const value = new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1];
        return value === undefined ? '?' : (Number(value) / 1048576).toFixed(0);
      };
      return (
        `, main heap ${mib('nodejs_heap_size_used_bytes')} MiB used, ` +
        `external ${mib('nodejs_external_memory_bytes')} MiB`
      );
    } catch {
      return '';
    }
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const queueId = typeof entry.queueId === 'string' ? entry.queueId : '';
    switch (entry.message) {
      case 'mailbridge started': {
        this.smtpPort = Number(/:(\d+)$/.exec(String(entry.smtp))?.[1] ?? 0);
        this.httpPort = Number(/:(\d+)$/.exec(String(entry.http))?.[1] ?? 0);
        this.onStarted?.();
        break;
      }
      case 'message delivered':
        this.delivered.set(queueId, String(entry.messageId ?? ''));
        break;
      case 'message dead':
        this.dead.set(queueId, String(entry.reason ?? ''));
        break;
      case 'delivery deferred':
        this.deferredIds.set(queueId, (this.deferredIds.get(queueId) ?? 0) + 1);
        break;
    }
    if (entry.level === 'error') {
      const message = String(entry.message);
      this.errorCounts[message] = (this.errorCounts[message] ?? 0) + 1;
      if (this.errors.length < 200) this.errors.push(entry);
    }
  }
}
