// Cluster mode as real processes: workers share the SMTP port and the spool; the primary sums
// their metrics, restarts a dead worker, and shuts them all down on SIGTERM.
import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import { hasPromtool, promtool } from '../helpers/promtool.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';
import {
  freePort,
  startCli,
  type CliProcess,
} from '../helpers/spawn-daemon.js';
import { spoolFiles, waitFor, waitForLogCount } from '../helpers/wait-for.js';

const WAIT_MS = 15_000;

function httpGet(
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, res => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('one daemon per spool (real processes)', function () {
  this.timeout(40_000);

  it('a second daemon on a spool in use exits 1 and leaves the first one alone', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-lock-'));
    const env = async () => ({
      MAILBRIDGE_SMTP_PORT: String(await freePort()),
      MAILBRIDGE_HTTP_PORT: String(await freePort()),
      MAILBRIDGE_SPOOL_DIR: spoolDir,
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    const first = startCli(['serve'], await env());
    try {
      await first.waitForLog('mailbridge started');
      const second = startCli(['serve'], await env());
      const failed = await second.waitForLog('mailbridge failed to start');
      expect(String(failed.error)).to.include(
        `in use by process ${first.child.pid}`,
      );
      expect(await second.exited).to.deep.equal({ code: 1, signal: null });
      expect(first.child.exitCode).to.equal(null);
      first.child.kill('SIGTERM');
      expect(await first.exited).to.deep.equal({ code: 0, signal: null });
    } finally {
      await first.kill();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });

  it('a cluster whose workers cannot listen exits 1 instead of restarting them forever', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-cluster-'));
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as { port: number };
    const primary = startCli(['serve'], {
      MAILBRIDGE_CLUSTER_WORKERS: '2',
      MAILBRIDGE_SMTP_PORT: String(port),
      MAILBRIDGE_HTTP_PORT: String(await freePort()),
      MAILBRIDGE_SPOOL_DIR: spoolDir,
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    try {
      expect(await primary.exited).to.deep.equal({ code: 1, signal: null });
      expect(primary.logs.map(l => l.message)).to.include(
        'mailbridge failed to start',
      );
    } finally {
      await primary.kill();
      taken.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });
});

describe('cluster mode (real processes)', function () {
  this.timeout(40_000);
  let api: FakeApi;
  let spoolDir: string;
  let daemon: CliProcess | undefined;
  let smtpPort: number;
  let httpPort: number;
  const sockets: Socket[] = [];

  /** Starts a cluster of two on fresh ports and `spoolDir`, with these CLI arguments. */
  async function startCluster(args: string[] = []): Promise<void> {
    smtpPort = await freePort();
    httpPort = await freePort();
    daemon = startCli(['serve', ...args], {
      MAILBRIDGE_CLUSTER_WORKERS: '2',
      MAILBRIDGE_SMTP_PORT: String(smtpPort),
      MAILBRIDGE_HTTP_PORT: String(httpPort),
      MAILBRIDGE_SPOOL_DIR: spoolDir,
      MAILBRIDGE_API_URL: api.url,
      MAILBRIDGE_API_TOKEN: 'cluster-token',
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    const started = await daemon.waitForLog('mailbridge started');
    expect(started).to.include({ workers: 2, smtp: `127.0.0.1:${smtpPort}` });
  }

  beforeEach(async () => {
    api = await startFakeApi();
    spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-cluster-'));
    await startCluster();
  });
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await daemon?.kill();
    await api.close();
    await rm(spoolDir, { recursive: true, force: true });
  });

  /** Stops the cluster and starts another, on fresh ports and spool, with this configuration. */
  async function restart(configLines: string[]): Promise<void> {
    await daemon!.kill();
    await rm(spoolDir, { recursive: true, force: true });
    spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-cluster-'));
    const config = join(spoolDir, 'cluster.yaml');
    await writeFile(config, configLines.join('\n'));
    await startCluster(['--config', config]);
  }

  /** Opens a connection and resolves with the first line the server says, and the socket. */
  async function greeting(): Promise<{ line: string; socket: Socket }> {
    const socket = connect(smtpPort, '127.0.0.1');
    sockets.push(socket);
    socket.setEncoding('utf8');
    let text = '';
    while (!text.includes('\r\n')) {
      const [chunk] = (await once(socket, 'data')) as [string];
      text += chunk;
    }
    return { line: text.split('\r\n')[0]!, socket };
  }

  const send = (n: number) =>
    sendRaw({
      port: smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'jane@example.net',
        To: 'support@example.com',
        Subject: `cluster ${n}`,
        'Message-ID': `<cluster-${n}@example.net>`,
      }),
    });

  it('delivers every message once, sums metrics, exits 0 on SIGTERM', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, n) => send(n)),
    );
    expect(results.map(r => r.code)).to.deep.equal(Array(12).fill(250));
    await api.waitForRequests(12);
    const ids = api.requests.map(r => r.body.ext_msg_id).sort();
    expect(new Set(ids).size, 'each message posted once').to.equal(12);
    expect(
      api.requests.every(
        r => r.headers.authorization === 'Bearer cluster-token',
      ),
    ).to.equal(true);

    expect((await httpGet(httpPort, '/readyz')).status).to.equal(200);
    const status = JSON.parse((await httpGet(httpPort, '/status')).body) as {
      ready: boolean;
      delivery: { paused: boolean };
      spool: Record<string, number>;
    };
    expect(status.ready).to.equal(true);
    expect(status.delivery.paused).to.equal(false);
    expect(status.spool).to.have.keys('queue', 'dead', 'held');
    await waitForLogCount(daemon!, 'message delivered', 12, WAIT_MS);
    const metrics = (await httpGet(httpPort, '/metrics')).body;
    expect(metrics).to.match(
      /^mailbridge_messages_total\{outcome="accepted"\} 12$/m,
    );
    expect(metrics).to.match(
      /^mailbridge_deliveries_total\{outcome="delivered"\} 12$/m,
    );
    // the workers' metrics summed are as clean as one daemon's
    if (hasPromtool) {
      const checked = await promtool(['check', 'metrics'], metrics);
      expect(checked).to.deep.equal({ code: 0, output: '' });
    }

    daemon!.child.kill('SIGTERM');
    expect(await daemon!.exited).to.deep.equal({ code: 0, signal: null });
    expect(await spoolFiles(spoolDir, 'queue')).to.deep.equal([]);
    expect(await spoolFiles(spoolDir, 'msg')).to.deep.equal([]);
  });

  it('restarts a worker killed with SIGKILL and keeps accepting mail', async () => {
    const worker = daemon!.logs.find(l => l.message === 'worker started');
    expect(worker?.pid, 'workers log their pid').to.be.a('number');
    process.kill(worker!.pid as number, 'SIGKILL');
    await daemon!.waitForLog('worker died; starting another');
    await waitForLogCount(daemon!, 'worker started', 3, WAIT_MS);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, n) => send(100 + n)),
    );
    expect(results.map(r => r.code)).to.deep.equal(Array(6).fill(250));
    await api.waitForRequests(6);
    expect(new Set(api.requests.map(r => r.body.ext_msg_id)).size).to.equal(6);
  });

  it("counts a client's sessions once for all workers: past smtp.maxConnectionsPerClient, 421", async () => {
    await restart(['smtp: { maxConnectionsPerClient: 2 }']);
    // one at a time: the listener hands connections to the workers in turn, so the third
    // lands on a worker that holds only one of the two
    const first = await greeting();
    const second = await greeting();
    const third = await greeting();
    expect([first.line, second.line].map(l => l.slice(0, 4))).to.deep.equal([
      '220 ',
      '220 ',
    ]);
    expect(third.line).to.match(
      /^421 4\.7\.0 Too many connections from 127\.0\.0\.1/,
    );
    // a session that ends is given back, whichever worker had it (the primary hears of it a
    // moment later: a new session is tried until one is let in)
    first.socket.destroy();
    let line = '';
    for (let attempt = 0; attempt < 50 && !line.startsWith('220 '); attempt++) {
      line = (await greeting()).line;
    }
    expect(line).to.match(/^220 /);
  });

  it('a replacement worker takes back the claims of the worker it replaces', async () => {
    // a cluster of its own, with a short API timeout
    api.setDefault({ status: 0, stall: true });
    await restart([
      'api: { timeoutMs: 1500 }',
      'delivery:',
      '  scanIntervalMs: 100',
      '  retry: { initialDelayMs: 20, maxDelayMs: 100 }',
    ]);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, n) => send(200 + n)),
    );
    expect(results.map(r => r.code)).to.deep.equal(Array(6).fill(250));
    // wait until worker 1 holds a claim (its post is stalled at the stand-in)
    const claims = join(spoolDir, 'active-1');
    await waitFor(() => readdirSync(claims).length > 0, [[api, 'request']], {
      timeoutMs: WAIT_MS,
      what: 'a claim of worker 1',
    });
    const first = daemon!.logs.find(
      l => l.message === 'worker started' && l.claims === 'active-1',
    );
    process.kill(first!.pid as number, 'SIGKILL');
    await daemon!.waitForLog('claims of a dead worker requeued');
    const healthyFrom = api.requests.length;
    api.setDefault({ status: 204 });
    const ids = Array.from(
      { length: 6 },
      (_, n) => `<cluster-${200 + n}@example.net>`,
    );
    await waitFor(
      () => {
        const answered = new Set(
          api.requests.slice(healthyFrom).map(r => r.body.ext_msg_id),
        );
        return ids.every(id => answered.has(id));
      },
      [[api, 'request']],
      {
        timeoutMs: WAIT_MS,
        what: 'every message posted after the stand-in recovered',
      },
    );
    daemon!.child.kill('SIGTERM');
    expect(await daemon!.exited).to.deep.equal({ code: 0, signal: null });
    expect(await spoolFiles(spoolDir, 'msg')).to.deep.equal([]);
    expect(readdirSync(claims)).to.deep.equal([]);
  });
});
