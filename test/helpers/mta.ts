// What the throwaway MTAs of the interop tests share (postfix.ts, exim.ts): a free port, the
// system's users and groups, a mail log to wait on, running a program, waiting for an exit.
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { waitFor } from './wait-for.js';

/** A free port on 127.0.0.1 (bound and released: the MTA binds it right after). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise(done => server.close(done));
  return port;
}

/** A user's ids (/etc/passwd), or undefined when there is no such user. */
export function userIds(
  name: string,
): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** A group's id (/etc/group), or undefined when there is no such group. */
export function groupId(name: string): number | undefined {
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${name}:`));
  return line === undefined ? undefined : Number(line.split(':')[2]);
}

/** Whether a process runs (a zombie nobody reaped yet does not). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Sends SIGTERM to a process this test started and waits (bounded) until it is gone. */
export async function terminate(pid: number, what: string): Promise<void> {
  if (pid <= 0 || !isRunning(pid)) return;
  process.kill(pid, 'SIGTERM');
  const ticks = new EventEmitter();
  const timer = setInterval(() => ticks.emit('tick'), 50);
  try {
    await waitFor(() => !isRunning(pid), [[ticks, 'tick']], {
      timeoutMs: 10_000,
      what: `${what} (pid ${pid}) to exit`,
    });
  } finally {
    clearInterval(timer);
  }
}

/**
 * Stops a throwaway daemon and removes its folder: its pid as known, else from `pidFile` (a
 * start that failed half-way may not have read it yet).
 */
export async function stopThrowaway(
  dir: string,
  pid: number,
  pidFile: string,
  what: string,
): Promise<void> {
  if (pid === 0 && existsSync(pidFile)) {
    pid = Number(readFileSync(pidFile, 'utf8').trim()) || 0;
  }
  await terminate(pid, what);
  await rm(dir, { recursive: true, force: true });
}

/**
 * A mail log file to wait on: it emits 'change' when the file may have grown (fs.watch, and a
 * 250 ms backstop for a file system whose change events are late or lost: a bounded wait's
 * re-check, not a timed assertion).
 */
export class MailLog extends EventEmitter {
  private readonly watcher: FSWatcher;
  private readonly ticker: NodeJS.Timeout;

  constructor(readonly path: string) {
    super();
    this.watcher = watch(path, () => this.emit('change'));
    this.ticker = setInterval(() => this.emit('change'), 250);
  }

  text(): string {
    try {
      return readFileSync(this.path, 'utf8');
    } catch {
      return '';
    }
  }

  /** The last lines, for a failure's message. */
  tail(lines = 15): string {
    return this.text().trim().split('\n').slice(-lines).join('\n');
  }

  /** Resolves once the log matches `pattern`; rejects after `timeoutMs` with its tail. */
  waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    return waitFor(() => pattern.test(this.text()), [[this, 'change']], {
      timeoutMs,
      what: `the mail log to match ${pattern}`,
      describe: () => this.tail(),
    });
  }

  close(): void {
    clearInterval(this.ticker);
    this.watcher.close();
  }
}

/**
 * Runs a program with a clean environment (plus `env`), `input` on its stdin; resolves with
 * its stdout, rejects with its output and `context()` unless it exits 0.
 */
export async function runProgram(
  path: string,
  args: string[],
  options: {
    input?: string | Buffer;
    env?: Record<string, string>;
    context?: () => string;
  } = {},
): Promise<string> {
  const child = spawn(path, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...options.env },
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  let errors = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (errors += s));
  // a program that reads no input may be gone before it is written: not an error here
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) {
    throw new Error(
      `${path} ${args.join(' ')} exited ${code}: ${errors}${output}\n${options.context?.() ?? ''}`,
    );
  }
  return output;
}
