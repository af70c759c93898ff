// Runs the real command line as a long-lived child (e.g. `serve`) and follows its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How a child ended: its exit code, or the signal that killed it. */
export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `mailbridge ...` child process. */
export interface CliProcess {
  child: ChildProcess;
  /** every stdout line that parsed as JSON (the log lines), in order */
  logs: Array<Record<string, unknown>>;
  /** stdout lines that were not JSON */
  otherStdout: string[];
  /** everything written to stderr so far */
  stderr(): string;
  /** resolves with the first log line (past or future) whose `message` equals `message` */
  waitForLog(message: string): Promise<Record<string, unknown>>;
  /** resolves when the child has exited */
  exited: Promise<CliExit>;
  /** sends SIGKILL if the child is still running and waits for it; safe to call twice */
  kill(): Promise<CliExit>;
}

/**
 * Starts `src/cli.ts ...args` through tsx with a clean environment (PATH, NODE_ENV=test, then
 * `env`). Rejects `waitForLog` promises when the child exits before the line arrives.
 */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
): CliProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', ...args],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Array<Record<string, unknown>> = [];
  const otherStdout: string[] = [];
  let stderr = '';
  let partial = '';
  let exit: CliExit | undefined;
  const waiters: Array<{
    message: string;
    resolve: (line: Record<string, unknown>) => void;
    reject: (err: Error) => void;
  }> = [];

  const onLine = (line: string) => {
    if (!line.trim()) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      otherStdout.push(line);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) {
      otherStdout.push(line);
      return;
    }
    const entry = parsed as Record<string, unknown>;
    logs.push(entry);
    for (const waiter of [...waiters]) {
      if (entry.message === waiter.message) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(entry);
      }
    }
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });

  const exited = new Promise<CliExit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      onLine(partial);
      partial = '';
      exit = { code, signal };
      for (const waiter of waiters.splice(0)) {
        waiter.reject(
          new Error(
            `mailbridge exited (code ${code}, signal ${signal}) before logging ` +
              `"${waiter.message}"; stderr: ${stderr}; last log lines ` +
              // a cluster's workers log here too: the cause is often a line or two back
              `(the primary's and its workers'): ${logs
                .slice(-8)
                .map(l => JSON.stringify(l))
                .join('\n')}`,
          ),
        );
      }
      resolve(exit);
    });
  });
  // A failed spawn rejects `exited`; keep that from becoming an unhandled rejection here.
  exited.catch(() => undefined);

  return {
    child,
    logs,
    otherStdout,
    stderr: () => stderr,
    waitForLog(message) {
      const seen = logs.find(entry => entry.message === message);
      if (seen) return Promise.resolve(seen);
      if (exit) {
        return Promise.reject(
          new Error(`mailbridge already exited before logging "${message}"`),
        );
      }
      return new Promise((resolve, reject) => {
        waiters.push({ message, resolve, reject });
      });
    },
    exited,
    async kill() {
      if (!exit) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** A TCP port that was free a moment ago: listen on port 0, read the port, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>(done => server.close(() => done()));
  return port;
}
