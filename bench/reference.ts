// The reference point, run by the benchmark in turn with mailbridge (BENCH_REFERENCE=1):
// Haraka with a plugin that merely POSTs the raw message to the same stand-in API, without
// parsing or durability. Its figures vary with this VM as ours do, so only runs at the same
// moment compare.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version the figures came from; installed into bench/reference/ on first use. */
export const HARAKA_VERSION = '3.3.4';

const DIR = fileURLToPath(new URL('./reference/', import.meta.url));
const BIN = join(DIR, 'node_modules', 'Haraka', 'bin', 'haraka');

/**
 * The plugin: every recipient accepted, the queue hook POSTs the raw message over a keep-alive
 * agent and answers 250 on a 2xx, 451 otherwise.
 */
const PLUGIN = `const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
exports.hook_rcpt = next => next(OK);
exports.hook_queue = function (next, connection) {
  connection.transaction.message_stream.get_data(body => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: Number(process.env.API_PORT),
        path: '/api/v1/message',
        method: 'POST',
        agent,
        headers: { 'content-type': 'message/rfc822', 'content-length': body.length },
      },
      res => {
        res.resume();
        res.on('end', () => next(res.statusCode < 300 ? OK : DENYSOFT));
      },
    );
    req.on('error', () => next(DENYSOFT));
    req.end(body);
  });
};
`;

/** Installs Haraka into bench/reference/node_modules unless it is there. */
export function installHaraka(): void {
  if (existsSync(BIN)) return;
  mkdirSync(DIR, { recursive: true });
  writeFileSync(
    join(DIR, 'package.json'),
    `${JSON.stringify({ private: true, dependencies: { Haraka: HARAKA_VERSION } }, null, 2)}\n`,
  );
  const result = spawnSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--ignore-scripts'],
    { cwd: DIR, stdio: 'inherit' },
  );
  if (result.status !== 0 || !existsSync(BIN)) {
    throw new Error(`could not install Haraka ${HARAKA_VERSION}`);
  }
}

export interface Reference {
  child: ChildProcess;
  smtpPort: number;
  stop(): Promise<void>;
}

/** Starts Haraka (one process) posting to the stand-in. */
export async function startHaraka(
  apiPort: number,
  smtpPort: number,
): Promise<Reference> {
  const root = join(
    mkdtempSync(join(tmpdir(), 'mailbridge-bench-haraka-')),
    'haraka',
  );
  // Haraka's own default configuration (`haraka -i`), then ours over it
  const init = spawnSync(process.execPath, [BIN, '-i', root], {
    stdio: 'ignore',
  });
  if (init.status !== 0) throw new Error('haraka -i failed');
  writeFileSync(join(root, 'config', 'plugins'), 'post_raw\n');
  writeFileSync(
    join(root, 'config', 'smtp.ini'),
    // nodes=0: one process, no cluster (unset, Haraka forks one worker from a primary)
    `listen=127.0.0.1:${smtpPort}\nnodes=0\n`,
  );
  writeFileSync(join(root, 'config', 'log.ini'), '[main]\nlevel=warn\n');
  writeFileSync(join(root, 'plugins', 'post_raw.js'), PLUGIN);
  const child = spawn(process.execPath, [BIN, '-c', root], {
    env: { PATH: process.env.PATH, API_PORT: String(apiPort) },
    stdio: [
      'ignore',
      process.env.BENCH_DEBUG ? 'inherit' : 'ignore',
      'inherit',
    ],
  });
  const deadline = Date.now() + 30_000;
  while (!(await listening(smtpPort))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      rmSync(dirname(root), { recursive: true, force: true });
      throw new Error('Haraka did not start');
    }
    await new Promise(r => setTimeout(r, 100));
  }
  return {
    child,
    smtpPort,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      rmSync(dirname(root), { recursive: true, force: true });
    },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
