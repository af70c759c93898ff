// `npm start` and signals: a SIGTERM to the npm process must reach the daemon (npm passes it
// to its child; a shell between them would die and leave the daemon running).
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Whether a process of that id still runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `npm start` in `cwd`, its stdout lines collected; `waitFor(text)` resolves on a line with it. */
function npmStart(
  cwd: string,
  env: Record<string, string>,
): {
  npm: ChildProcess;
  lines: string[];
  waitFor(text: string): Promise<string>;
  /** npm's exit (its stdout may stay open: a daemon left running holds it) */
  exited: Promise<number | null>;
  /** npm's stdout closed too: every line is in */
  closed: Promise<void>;
} {
  const npm = spawn('npm', ['start', '--silent'], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters: Array<[string, (line: string) => void]> = [];
  let partial = '';
  npm.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const done = partial.split('\n');
    partial = done.pop() ?? '';
    for (const line of done) {
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (line.includes(waiter[0])) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter[1](line);
        }
      }
    }
  });
  const exited = new Promise<number | null>(done =>
    npm.once('exit', code => done(code)),
  );
  const closed = new Promise<void>(done => npm.once('close', () => done()));
  return {
    npm,
    lines,
    exited,
    closed,
    waitFor: text => {
      const seen = lines.find(l => l.includes(text));
      return seen
        ? Promise.resolve(seen)
        : new Promise(done => waiters.push([text, done]));
    },
  };
}

describe('deploy: npm start passes SIGTERM on', function () {
  this.timeout(60_000);
  let dir: string;
  const leftover: number[] = [];

  before(function () {
    if (spawnSync('npm', ['--version'], { stdio: 'ignore' }).status !== 0) {
      console.log('      skipped: npm is not on PATH');
      this.skip();
    }
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mb-npm-start-'));
  });
  afterEach(async () => {
    // a daemon the signal did not reach (the regression) must not outlive the test
    for (const pid of leftover.splice(0)) if (alive(pid)) process.kill(pid);
    await rm(dir, { recursive: true, force: true });
  });

  it('the start script (run with a stand-in dist/cli.js) hands the signal to node', async () => {
    // package.json's own start script; dist/cli.js a stand-in that says when it is signalled
    const pkg = JSON.parse(
      await readFile(join(ROOT, 'package.json'), 'utf8'),
    ) as { scripts: { start: string } };
    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'stand-in',
        scripts: { start: pkg.scripts.start },
      }),
    );
    await mkdir(join(dir, 'dist'));
    await writeFile(
      join(dir, 'dist/cli.js'),
      [
        "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0); });",
        'console.log(`pid ${process.pid} ${process.argv.slice(2).join(" ")}`);',
        'setInterval(() => undefined, 1 << 30);',
      ].join('\n'),
    );
    const run = npmStart(dir, {});
    const started = await run.waitFor('pid ');
    const pid = Number(started.split(' ')[1]);
    leftover.push(pid);
    expect(started).to.match(/ serve$/);
    run.npm.kill('SIGTERM');
    await run.exited;
    // npm waits for its child: once npm is gone, so is node
    expect(alive(pid)).to.equal(false);
    await run.closed;
    expect(run.lines).to.include('got SIGTERM');
  });

  it('the real daemon stops cleanly on a SIGTERM to npm (when built)', async function () {
    if (!existsSync(join(ROOT, 'dist/cli.js'))) {
      console.log('      skipped: dist/ is not built (npm ci builds it)');
      this.skip();
    }
    const run = npmStart(ROOT, {
      NODE_ENV: 'test',
      MAILBRIDGE_SMTP_PORT: '0',
      MAILBRIDGE_HTTP_PORT: '0',
      MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    const started = JSON.parse(await run.waitFor('"mailbridge started"')) as {
      pid: number;
    };
    leftover.push(started.pid);
    run.npm.kill('SIGTERM');
    expect(await run.exited).to.equal(0);
    expect(alive(started.pid)).to.equal(false);
    await run.closed;
    expect(run.lines.some(l => l.includes('"mailbridge stopped"'))).to.equal(
      true,
    );
  });
});
