// The spool lock: one daemon per spool; a lock left by a dead process is taken over.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockSpool, SpoolBusyError } from '../../src/spool/spool-lock.js';

describe('lockSpool', () => {
  let dir: string;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-lock-'));
  });
  afterEach(async () => {
    child?.kill('SIGKILL');
    child = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** A live Node process that is not us: a second daemon, as far as the lock can tell. */
  async function otherNode(): Promise<number> {
    child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    await once(child, 'spawn');
    return child.pid!;
  }

  it('writes our pid, and release removes it', async () => {
    const release = await lockSpool(dir);
    expect(await readFile(join(dir, 'mailbridge.pid'), 'utf8')).to.equal(
      `${process.pid}\n`,
    );
    await release();
    const gone = await readFile(join(dir, 'mailbridge.pid'), 'utf8').catch(
      () => null,
    );
    expect(gone).to.equal(null);
  });

  it('refuses a spool held by another live process, naming it', async () => {
    const pid = await otherNode();
    await writeFile(join(dir, 'mailbridge.pid'), `${pid}\n`);
    let failure: unknown;
    await lockSpool(dir).catch(err => (failure = err));
    expect(failure).to.be.instanceOf(SpoolBusyError);
    expect((failure as Error).message).to.include(`in use by process ${pid}`);
    expect(await readFile(join(dir, 'mailbridge.pid'), 'utf8')).to.equal(
      `${pid}\n`,
    );
  });

  it('takes over a lock whose process is gone (kill -9, a crash)', async () => {
    const pid = await otherNode();
    child!.kill('SIGKILL');
    await once(child!, 'exit');
    await writeFile(join(dir, 'mailbridge.pid'), `${pid}\n`);
    const release = await lockSpool(dir);
    expect(await readFile(join(dir, 'mailbridge.pid'), 'utf8')).to.equal(
      `${process.pid}\n`,
    );
    await release();
  });

  it('is re-entrant within one process, and a garbage lock file is stale', async () => {
    await writeFile(join(dir, 'mailbridge.pid'), 'not a pid');
    const first = await lockSpool(dir);
    const second = await lockSpool(dir);
    await second();
    expect(await readFile(join(dir, 'mailbridge.pid'), 'utf8')).to.equal(
      `${process.pid}\n`,
    );
    await first();
    expect(existsSync(join(dir, 'mailbridge.pid'))).to.equal(false);
  });

  /**
   * Starts `count` processes that each try to take the lock of `dir` at once and say whether
   * they won; they hold what they took until their stdin closes.
   */
  async function contenders(count: number): Promise<string[]> {
    const module = new URL('../../src/spool/spool-lock.ts', import.meta.url)
      .href;
    const script = [
      `const { lockSpool } = await import(${JSON.stringify(module)});`,
      `const said = await lockSpool(${JSON.stringify(dir)}).then(() => 'won', e => e.name);`,
      `process.stdout.write(said + '\\n');`,
      `process.stdin.resume();`,
    ].join('\n');
    const children = Array.from({ length: count }, () =>
      spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      ),
    );
    try {
      return await Promise.all(
        children.map(async c => {
          let out = '';
          c.stdout!.setEncoding('utf8');
          for await (const chunk of c.stdout!) {
            out += chunk;
            if (out.endsWith('\n')) break;
          }
          return out.trim();
        }),
      );
    } finally {
      for (const c of children) c.stdin!.end();
      await Promise.all(children.map(c => once(c, 'exit')));
    }
  }

  it('many starts at once on a stale lock file: exactly one wins, every time', async function () {
    this.timeout(60_000);
    const pid = await otherNode();
    child!.kill('SIGKILL');
    await once(child!, 'exit');
    for (let round = 0; round < 4; round++) {
      await writeFile(join(dir, 'mailbridge.pid'), `${pid}\n`);
      const said = await contenders(8);
      expect(
        said.filter(s => s === 'won'),
        said.join(' '),
      ).to.have.length(1);
      expect(said.filter(s => s !== 'won')).to.deep.equal(
        Array(7).fill('SpoolBusyError'),
      );
    }
  });
});
