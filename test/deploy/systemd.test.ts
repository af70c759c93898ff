// The shipped systemd unit: hardened as docs/deployment.md says, measured with systemd-analyze,
// and in step with the daemon's defaults (stop timeout above the drain, the Node flags).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = join(ROOT, 'deploy/systemd/mailbridge.service');
const PORT_25 = join(ROOT, 'deploy/systemd/port-25.conf');

/** A unit file's assignments, key -> every value in order (a key may repeat). */
function parseUnit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1)]);
  }
  return keys;
}

/** The one (last) value of a key. */
function value(unit: Map<string, string[]>, key: string): string | undefined {
  return unit.get(key)?.at(-1);
}

/** The Environment= assignments as one record. */
function environment(unit: Map<string, string[]>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of unit.get('Environment') ?? []) {
    for (const pair of line.split(/\s+/)) {
      const eq = pair.indexOf('=');
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** systemd-analyze, or why it cannot be used here. */
function analyzeUnavailable(): string | null {
  const help = spawnSync('systemd-analyze', ['security', '--help'], {
    encoding: 'utf8',
  });
  if (help.error) return 'systemd-analyze is not installed';
  if (!help.stdout.includes('--offline')) {
    return 'this systemd-analyze has no --offline (systemd 250 or later has)';
  }
  return null;
}

/** The overall exposure line of `systemd-analyze security --offline=true FILE`. */
function exposure(file: string): { score: number; level: string } {
  const run = spawnSync(
    'systemd-analyze',
    ['security', '--offline=true', '--no-pager', file],
    { encoding: 'utf8' },
  );
  const match = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(
    run.stdout,
  );
  if (!match) throw new Error(`no exposure line: ${run.stdout}${run.stderr}`);
  return { score: Number(match[1]), level: match[2]! };
}

describe('deploy: systemd unit', () => {
  let unit: Map<string, string[]>;
  let defaults: {
    smtp: { closeTimeoutMs: number };
    delivery: { shutdownTimeoutMs: number };
  };
  let dir: string;

  before(async () => {
    unit = parseUnit(await readFile(UNIT, 'utf8'));
    defaults = parse(
      await readFile(join(ROOT, 'config/default.yaml'), 'utf8'),
    ) as typeof defaults;
    dir = await mkdtemp(join(tmpdir(), 'mb-unit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs as the mailbridge user, its spool in its own state directory, files 0600', () => {
    expect(value(unit, 'User')).to.equal('mailbridge');
    expect(value(unit, 'StateDirectory')).to.equal('mailbridge');
    expect(value(unit, 'StateDirectoryMode')).to.equal('0700');
    expect(value(unit, 'UMask')).to.equal('0077');
    expect(environment(unit).MAILBRIDGE_SPOOL_DIR).to.match(
      /^\/var\/lib\/mailbridge\//,
    );
  });

  it('is hardened: read-only system, no privileges, no capabilities', () => {
    expect(value(unit, 'ProtectSystem')).to.equal('strict');
    expect(value(unit, 'NoNewPrivileges')).to.equal('yes');
    expect(value(unit, 'PrivateTmp')).to.equal('yes');
    expect(value(unit, 'CapabilityBoundingSet')).to.equal('');
    expect(value(unit, 'RestrictAddressFamilies')).to.equal(
      'AF_INET AF_INET6 AF_UNIX',
    );
    expect(unit.get('SystemCallFilter')).to.include('@system-service');
    // V8's JIT needs memory that turns executable (Node aborts at start under it)
    expect(value(unit, 'MemoryDenyWriteExecute')).to.equal(undefined);
  });

  it('signals ready with systemd-notify (Type=notify, NotifyAccess=all)', () => {
    expect(value(unit, 'Type')).to.equal('notify');
    // the sender is systemd-notify, a child of the daemon
    expect(value(unit, 'NotifyAccess')).to.equal('all');
  });

  it('waits longer to stop than the drain: sessions, then posts in flight', () => {
    const drainSeconds =
      (defaults.smtp.closeTimeoutMs + defaults.delivery.shutdownTimeoutMs) /
      1000;
    expect(Number(value(unit, 'TimeoutStopSec'))).to.be.greaterThan(
      drainSeconds,
    );
    expect(value(unit, 'KillSignal')).to.equal('SIGTERM');
  });

  it('takes the token from a file (LoadCredential, MAILBRIDGE_API_TOKEN_FILE)', () => {
    expect(value(unit, 'LoadCredential')).to.match(/^api-token:\//);
    expect(environment(unit).MAILBRIDGE_API_TOKEN_FILE).to.equal(
      '%d/api-token',
    );
    expect(environment(unit)).not.to.have.property('MAILBRIDGE_API_TOKEN');
  });

  it('runs Node with the flags and thread pool of npm start and the Dockerfile', async () => {
    const pkg = JSON.parse(
      await readFile(join(ROOT, 'package.json'), 'utf8'),
    ) as { scripts: { start: string } };
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const flags =
      '--max-semi-space-size=1 --no-parallel-scavenge --heap-growing-percent=100';
    expect(value(unit, 'ExecStart')).to.include(`node ${flags} `);
    expect(pkg.scripts.start).to.include(flags);
    expect(dockerfile).to.include(
      '"--max-semi-space-size=1", "--no-parallel-scavenge", "--heap-growing-percent=100"',
    );
    expect(environment(unit).UV_THREADPOOL_SIZE).to.equal('16');
    expect(environment(unit).NODE_ENV).to.equal('production');
  });

  it('measures "OK" with systemd-analyze security --offline (1.3 when measured)', function () {
    const why = analyzeUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    const alone = exposure(UNIT);
    expect(alone.level).to.be.oneOf(['SAFE', 'OK']);
    expect(alone.score).to.be.at.most(1.5);
  });

  it('stays "OK" with the port 25 drop-in (1.6 when measured)', async function () {
    const why = analyzeUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    // a drop-in's lines come after the unit's: one file with both says the same
    const combined = join(dir, 'mailbridge.service');
    await writeFile(
      combined,
      (await readFile(UNIT, 'utf8')) + (await readFile(PORT_25, 'utf8')),
    );
    const port25 = exposure(combined);
    expect(port25.level).to.be.oneOf(['SAFE', 'OK']);
    expect(port25.score).to.be.at.most(2);
    const withDropIn = parseUnit(await readFile(combined, 'utf8'));
    expect(value(withDropIn, 'CapabilityBoundingSet')).to.equal(
      'CAP_NET_BIND_SERVICE',
    );
    expect(environment(withDropIn).MAILBRIDGE_SMTP_PORT).to.equal('25');
  });

  it('passes systemd-analyze verify (node at this test run’s path)', async function () {
    const help = spawnSync('systemd-analyze', ['--help'], { encoding: 'utf8' });
    if (help.error) {
      console.log('      skipped: systemd-analyze is not installed');
      this.skip();
    }
    // verify checks that ExecStart's program exists: point it at the node running this test
    const copy = join(dir, 'verify', 'mailbridge.service');
    await mkdir(join(dir, 'verify'), { recursive: true });
    await writeFile(
      copy,
      (await readFile(UNIT, 'utf8')).replace(
        'ExecStart=/usr/bin/node ',
        `ExecStart=${process.execPath} `,
      ),
    );
    const run = spawnSync('systemd-analyze', ['verify', '--man=no', copy], {
      encoding: 'utf8',
    });
    expect(run.stderr + run.stdout).to.equal('');
    expect(run.status).to.equal(0);
  });
});
