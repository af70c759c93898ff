// A real redis-server for tests: on a free loopback port, in a throw-away folder, no persistence;
// stop() and start() again on the same port (an outage), close() at the end.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './spawn-daemon.js';

/** Why Redis tests cannot run here, or null when redis-server is installed. */
export function redisMissing(): string | null {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return probe.error || probe.status !== 0
    ? 'redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)'
    : null;
}

/** TLS (its certificate and key files) and a password, as a production Redis has them. */
export interface TestRedisOptions {
  tls?: { cert: string; key: string };
  password?: string;
}

export class TestRedis {
  private child?: ChildProcess;
  port = 0;
  private dir = '';

  constructor(private readonly options: TestRedisOptions = {}) {}

  /** redis:// (rediss:// with TLS), with the password when there is one. */
  get url(): string {
    const { tls, password } = this.options;
    const auth = password ? `:${encodeURIComponent(password)}@` : '';
    return `${tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${this.port}`;
  }

  /** Starts the server (on the port it had before, after a stop()). */
  async start(): Promise<this> {
    this.dir ||= await mkdtemp(join(tmpdir(), 'mailbridge-redis-'));
    this.port ||= await freePort();
    const { tls, password } = this.options;
    const listen = tls
      ? [
          '--port',
          '0',
          '--tls-port',
          String(this.port),
          '--tls-cert-file',
          tls.cert,
          '--tls-key-file',
          tls.key,
          '--tls-auth-clients',
          'no',
        ]
      : ['--port', String(this.port)];
    const child = spawn(
      'redis-server',
      [
        ...listen,
        ...(password ? ['--requirepass', password] : []),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('Ready to accept connections')) {
          child.stdout!.off('data', onData);
          child.stdout!.resume();
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', code =>
        reject(new Error(`redis-server exited (${code}): ${output}`)),
      );
    });
    return this;
  }

  /** The server's process id (the benchmark reads its CPU time); undefined while stopped. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered (a slow Redis). */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a paused server answer again. */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the server (an outage); start() brings it back, empty. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    // a paused (SIGSTOPped) server dies of SIGKILL all the same
    child.kill('SIGKILL');
    await exited;
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
