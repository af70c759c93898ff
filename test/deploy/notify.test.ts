// The ready signal of the systemd unit (Type=notify): the daemon runs systemd-notify --ready
// once SMTP listens, and only when systemd asked for it ($NOTIFY_SOCKET).
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { NOTIFIED, notifyReady } from '../../src/app/notify-ready.js';
import { createLogger } from '../../src/observability/logger.js';
import { startCli, type CliProcess } from '../helpers/spawn-daemon.js';

/** A logger whose JSON lines are collected. */
function collectingLogger(): {
  log: ReturnType<typeof createLogger>;
  lines: Array<Record<string, unknown>>;
} {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return { log: createLogger({ level: 'info', stream }), lines };
}

/** Whether `command` runs here (exit status 0 for its `args`). */
function available(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** Resolves once the SMTP port takes a TCP connection. */
function connects(port: number): Promise<boolean> {
  return new Promise(done => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** The port of a "mailbridge started" line's `smtp` field (host:port). */
function smtpPortOf(started: Record<string, unknown>): number {
  return Number(String(started.smtp).split(':').pop());
}

describe('deploy: systemd ready signal (notify-ready)', function () {
  this.timeout(30_000);

  describe('notifyReady', () => {
    it('does nothing when systemd did not ask (no NOTIFY_SOCKET)', async () => {
      const calls: string[][] = [];
      const { log, lines } = collectingLogger();
      await notifyReady({ nodeEnv: 'test' }, log, async (file, args) => {
        calls.push([file, ...args]);
      });
      await notifyReady(undefined, log, async (file, args) => {
        calls.push([file, ...args]);
      });
      expect(calls).to.deep.equal([]);
      expect(lines).to.deep.equal([]);
    });

    it('runs systemd-notify --ready when NOTIFY_SOCKET is set, and says so', async () => {
      const calls: string[][] = [];
      const { log, lines } = collectingLogger();
      await notifyReady({ notifySocket: '/run/x' }, log, async (file, args) => {
        calls.push([file, ...args]);
      });
      expect(calls).to.deep.equal([
        ['systemd-notify', '--ready', '--status=accepting mail'],
      ]);
      expect(lines.map(l => [l.level, l.message])).to.deep.equal([
        ['info', NOTIFIED],
      ]);
    });

    it('logs a failure at error and never rejects', async () => {
      const { log, lines } = collectingLogger();
      await notifyReady({ notifySocket: '/run/x' }, log, async () => {
        throw Object.assign(new Error('spawn systemd-notify ENOENT'), {
          code: 'ENOENT',
        });
      });
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ level: 'error', code: 'ENOENT' });
      expect(String(lines[0]!.message)).to.match(/systemd-notify failed/);
    });
  });

  describe('serve', () => {
    let dir: string;
    let daemon: CliProcess | undefined;
    let receiver: ChildProcess | undefined;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mb-notify-'));
    });
    afterEach(async () => {
      await daemon?.kill();
      daemon = undefined;
      receiver?.kill();
      receiver = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    const serveEnv = (extra: Record<string, string>) => ({
      MAILBRIDGE_SMTP_PORT: '0',
      MAILBRIDGE_HTTP_PORT: '0',
      MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
      MAILBRIDGE_LOG_LEVEL: 'info',
      ...extra,
    });

    it('calls systemd-notify --ready once SMTP listens (a stand-in on PATH)', async () => {
      const bin = join(dir, 'bin');
      const record = join(dir, 'notified.txt');
      await mkdir(bin);
      await writeFile(
        join(bin, 'systemd-notify'),
        '#!/bin/sh\nprintf \'%s\\n\' "$NOTIFY_SOCKET" "$@" > "$NOTIFY_RECORD"\n',
      );
      await chmod(join(bin, 'systemd-notify'), 0o755);
      daemon = startCli(
        ['serve'],
        serveEnv({
          PATH: `${bin}:${process.env.PATH ?? ''}`,
          NOTIFY_SOCKET: join(dir, 'notify.sock'),
          NOTIFY_RECORD: record,
        }),
      );
      const started = await daemon.waitForLog('mailbridge started');
      await daemon.waitForLog(NOTIFIED);
      expect((await readFile(record, 'utf8')).split('\n')).to.deep.equal([
        join(dir, 'notify.sock'),
        '--ready',
        '--status=accepting mail',
        '',
      ]);
      // ready means it: the listener takes connections
      expect(await connects(smtpPortOf(started))).to.equal(true);
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).to.deep.equal({ code: 0, signal: null });
    });

    it('sends READY=1 to a real notify socket through the real systemd-notify', async function () {
      if (!available('python3', ['-c', 'import socket'])) {
        this.skip(); // python3 stands in for systemd's end of the socket
      }
      if (!available('systemd-notify', ['--version'])) {
        this.skip(); // no systemd-notify on this machine
      }
      const socketPath = join(dir, 'notify.sock');
      // systemd's end: a unix datagram socket; each datagram printed as one JSON line; the
      // descriptor of systemd-notify's BARRIER=1 closed, which tells it the message was read
      const script = [
        'import array, json, os, socket, sys',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        's.bind(sys.argv[1])',
        'print(json.dumps("listening"), flush=True)',
        'while True:',
        '    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64))',
        '    for level, kind, data in anc:',
        '        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:',
        '            fds = array.array("i")',
        '            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])',
        '            for fd in fds: os.close(fd)',
        '    print(json.dumps(msg.decode()), flush=True)',
      ].join('\n');
      receiver = spawn('python3', ['-c', script, socketPath], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const datagrams: string[] = [];
      let buffered = '';
      let isListening!: () => void;
      const listening = new Promise<void>(done => (isListening = done));
      const ready = new Promise<void>((done, fail) => {
        receiver!.once('exit', code =>
          fail(new Error(`notify socket helper exited (${code})`)),
        );
        receiver!.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
          buffered += chunk;
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          for (const line of lines) datagrams.push(JSON.parse(line) as string);
          // (a chunk may end inside a line: only a whole first line says it is listening)
          if (datagrams.length > 0) isListening();
          if (datagrams.some(d => d.split('\n').includes('READY=1'))) done();
        });
      });
      await listening;
      expect(datagrams[0]).to.equal('listening');

      daemon = startCli(['serve'], serveEnv({ NOTIFY_SOCKET: socketPath }));
      await daemon.waitForLog(NOTIFIED);
      await ready;
      const message = datagrams.find(d => d.split('\n').includes('READY=1'))!;
      expect(message.split('\n')).to.include('STATUS=accepting mail');
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).to.deep.equal({ code: 0, signal: null });
    });
  });
});
