// A fleet: two daemons sharing one real redis-server (state.redis.url). Dedupe records and client
// limits hold across both; a Redis outage loses nothing, is said once, and is caught up after.
import { expect } from 'chai';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { fileURLToPath } from 'node:url';
import { freePort, startCli } from '../helpers/spawn-daemon.js';
import { makeMessage, sendRaw, smtpDialog } from '../helpers/smtp-client.js';
import { redisMissing, TestRedis } from '../helpers/redis-server.js';

const TLS = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

const ROUTES = [{ match: 'support@example.com', mailbox_id: 'mb-support' }];
const TO = ['support@example.com'];

const message = (id: string, body = 'Hello.\r\n') =>
  makeMessage(
    {
      From: 'jane@example.net',
      To: 'support@example.com',
      Subject: 'fleet',
      'Message-ID': `<${id}@example.net>`,
    },
    body,
  );

/** The first line the server sends on a new connection (its greeting or its refusal). */
async function firstLine(
  port: number,
): Promise<{ line: string; socket: Socket }> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  while (!text.includes('\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    text += chunk.toString('utf8');
  }
  return { line: text.split('\r\n')[0]!, socket };
}

describe('fleet: two daemons sharing one Redis', function () {
  const missing = redisMissing();
  const redis = new TestRedis();
  const sockets: Socket[] = [];
  const t = useBridge({
    beforeClose: () => {
      for (const socket of sockets.splice(0)) socket.destroy();
    },
  });
  let prefix = '';

  before(async function () {
    if (missing) this.skip();
    await redis.start();
  });
  after(async () => {
    await redis.close();
  });
  beforeEach(async function () {
    if (missing) this.skip();
    // the outage test stops it: every test starts with a Redis up
    if (!(await redisUp())) await redis.start();
    prefix = `test-${randomUUID()}:`;
  });

  async function redisUp(): Promise<boolean> {
    const probe = connect(redis.port, '127.0.0.1');
    const [event] = await Promise.race([
      once(probe, 'connect').then(() => ['connect']),
      once(probe, 'error').then(() => ['error']),
    ]);
    probe.destroy();
    return event === 'connect';
  }

  const start = (
    overrides: Record<string, unknown> = {},
    options: { spoolDir?: string; keepSpool?: boolean } = {},
  ): Promise<TestBridge> =>
    t.start(
      {
        delivery: { mode: 'sync' },
        api: apiAt(t.api.url),
        routes: ROUTES,
        state: { redis: { url: redis.url, prefix, timeoutMs: 2000 } },
        ...overrides,
      },
      options,
    );

  const send = (bridge: TestBridge, raw: string) =>
    sendRaw({ port: bridge.smtpPort, to: TO, raw });

  it('the same message through each instance is posted once', async () => {
    const a = await start();
    const b = await start();
    const raw = message('same');
    expect((await send(a, raw)).code).to.equal(250);
    expect((await send(b, raw)).code).to.equal(250);
    expect(t.api.requests).to.have.length(1);
    expect(t.api.requests[0]!.body.ext_msg_id).to.equal('<same@example.net>');
  });

  it('the same message reaching both at once: one posts it, the other defers (451) and then finds it delivered', async () => {
    const api = apiAt(t.api.url, { timeoutMs: 30_000 });
    const a = await start({ api });
    const b = await start({ api });
    const raw = message('at-once');
    t.api.reply({ status: 204, stall: true });
    const first = send(a, raw);
    await t.api.waitForRequests(1);
    // while a's POST is in flight, b holds off rather than post it too
    const second = await send(b, raw);
    expect(second.response).to.match(/^451 4\.3\.0 /);
    t.api.releaseStalled();
    expect((await first).code).to.equal(250);
    expect((await send(b, raw)).code).to.equal(250);
    expect(t.api.requests).to.have.length(1);
  });

  it('a different message reusing the Message-ID is posted by the other instance', async () => {
    const a = await start();
    const b = await start();
    expect((await send(a, message('reused', 'First.\r\n'))).code).to.equal(250);
    expect((await send(b, message('reused', 'Another.\r\n'))).code).to.equal(
      250,
    );
    expect(t.api.requests.map(r => r.body.content)).to.have.length(2);
  });

  it('an instance restarted on an empty spool still knows what the fleet delivered', async () => {
    const a = await start();
    const b = await start();
    const raw = message('restart');
    expect((await send(a, raw)).code).to.equal(250);
    await b.close();
    // a new volume: no local record at all, only Redis's
    const again = await start();
    expect((await send(again, raw)).code).to.equal(250);
    expect(t.api.requests).to.have.length(1);
    // and a new message through it is posted
    expect((await send(again, message('restart-new'))).code).to.equal(250);
    expect(t.api.requests).to.have.length(2);
  });

  it('connections per client are counted across both instances', async () => {
    const limits = { maxConnectionsPerClient: 2 };
    const a = await start({ smtp: limits });
    const b = await start({ smtp: limits });
    for (const bridge of [a, b]) {
      const open = await firstLine(bridge.smtpPort);
      sockets.push(open.socket);
      expect(open.line).to.match(/^220 /);
    }
    const third = await firstLine(a.smtpPort);
    sockets.push(third.socket);
    expect(third.line).to.match(
      /^421 4\.7\.0 Too many connections from 127\.0\.0\.1/,
    );
    // a session that ends gives its place back, across the fleet
    const ended = once(sockets[0]!, 'close');
    sockets[0]!.end('QUIT\r\n');
    await ended;
    await a.waitForLog(l => l.message === 'session closed');
    const fourth = await firstLine(b.smtpPort);
    sockets.push(fourth.socket);
    expect(fourth.line).to.match(/^220 /);
  });

  it('the connection rate per client is counted across both instances', async () => {
    const limits = { connectionRatePerClient: 3 };
    const a = await start({ smtp: limits });
    const b = await start({ smtp: limits });
    for (const bridge of [a, b, a]) {
      const { code } = await send(bridge, message(randomUUID()));
      expect(code).to.equal(250);
    }
    const refused = await firstLine(b.smtpPort);
    sockets.push(refused.socket);
    expect(refused.line).to.match(/^421 4\.7\.0 .*in the last minute/);
  });

  it('failed logins lock a client out across both instances', async () => {
    const smtp = {
      auth: {
        users: [{ username: 'forwarder', password: 'correct horse battery' }],
        allowInsecure: true,
      },
    };
    const a = await start({ smtp });
    const b = await start({ smtp });
    const bad = `AUTH PLAIN ${Buffer.from('\0forwarder\0guess').toString('base64')}`;
    // ten failures, five through each: each instance alone saw too few to lock anyone out
    for (const [bridge, tries] of [
      [a, 2],
      [b, 2],
      [a, 2],
      [b, 2],
      [a, 1],
    ] as const) {
      const replies = await smtpDialog(bridge.smtpPort, [
        'EHLO client.example.net',
        ...Array<string>(tries).fill(bad),
        'QUIT',
      ]);
      expect(replies.slice(2, 2 + tries)).to.satisfy((r: string[]) =>
        r.every(line => line.startsWith('535 ')),
      );
    }
    const last = await smtpDialog(b.smtpPort, ['EHLO client.example.net', bad]);
    expect(last[2]).to.match(/^421 /);
    const refused = await firstLine(a.smtpPort);
    sockets.push(refused.socket);
    expect(refused.line).to.equal(
      '421 4.7.0 Too many failed logins from 127.0.0.1, try again later',
    );
  });

  it('Redis stopped and started: mail flows on local records, said once, caught up after', async () => {
    const a = await start();
    const b = await start();
    await redis.stop();
    // while Redis is away: accepted and posted, each once, on local records
    const during = [message('outage-1'), message('outage-2')];
    for (const raw of during) expect((await send(a, raw)).code).to.equal(250);
    expect((await send(a, during[0]!)).code).to.equal(250);
    expect(t.api.requests).to.have.length(2);
    const warned = a.logs.filter(l =>
      String(l.message).startsWith('redis unreachable'),
    );
    expect(warned).to.have.length(1);
    const metrics = await a.daemon.metrics.registry.metrics();
    expect(metrics).to.match(
      /mailbridge_redis_fallbacks_total\{op="dedupe"\} [1-9]/,
    );
    expect(metrics).to.match(/mailbridge_redis_up 0/);
    const down = (await (
      await fetch(`http://127.0.0.1:${a.daemon.httpPort}/status`)
    ).json()) as { fleet: { redis: { up: boolean } } };
    expect(down.fleet.redis.up).to.equal(false);

    await redis.start();
    // A pushes what it recorded meanwhile: B then knows those messages too
    await a.waitForLog(l => l.message === 'redis reachable again: catching up');
    await b.waitForLog(l => l.message === 'redis reachable again: catching up');
    for (const raw of during) expect((await send(b, raw)).code).to.equal(250);
    expect(t.api.requests).to.have.length(2);
    // and new mail is shared again
    expect((await send(b, message('after'))).code).to.equal(250);
    expect((await send(a, message('after'))).code).to.equal(250);
    expect(t.api.requests).to.have.length(3);
  });

  it('a cluster in the fleet: its workers share the records, its primary publishes', async function () {
    this.timeout(120_000);
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-fleet-cluster-'));
    const config = join(dir, 'mailbridge.yaml');
    await writeFile(
      config,
      JSON.stringify({ routes: ROUTES, state: { redis: { prefix } } }),
    );
    const httpPort = await freePort();
    const smtpPort = await freePort();
    const cluster = startCli(['serve', '--config', config], {
      MAILBRIDGE_CLUSTER_WORKERS: '2',
      MAILBRIDGE_SMTP_PORT: String(smtpPort),
      MAILBRIDGE_HTTP_PORT: String(httpPort),
      MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
      MAILBRIDGE_API_URL: t.api.url,
      MAILBRIDGE_API_TOKEN: 'cluster-token',
      MAILBRIDGE_REDIS_URL: redis.url,
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    try {
      await cluster.waitForLog('mailbridge started');
      const single = await start({ delivery: { mode: 'queue' } });
      const raw = message('cluster');
      expect((await sendRaw({ port: smtpPort, to: TO, raw })).code).to.equal(
        250,
      );
      await cluster.waitForLog('message delivered');
      expect((await send(single, raw)).code).to.equal(250);
      await single.waitForLog(l => l.message === 'message delivered');
      expect(t.api.requests).to.have.length(1);
      const status = (await (
        await fetch(`http://127.0.0.1:${httpPort}/status`)
      ).json()) as {
        fleet: {
          redis: { up: boolean };
          instances: Array<{ instance: string }>;
        };
      };
      expect(status.fleet.redis.up).to.equal(true);
      expect(status.fleet.instances.map(r => r.instance)).to.include.members([
        `${status.fleet.instances[0]!.instance.replace(/:\d+$/, '')}:${smtpPort}`,
        `${status.fleet.instances[0]!.instance.replace(/:\d+$/, '')}:${single.smtpPort}`,
      ]);
    } finally {
      cluster.child.kill('SIGTERM');
      await cluster.exited;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rediss:// with a password: the daemon connects over TLS (its CA from NODE_EXTRA_CA_CERTS); a wrong password is an outage', async function () {
    this.timeout(120_000);
    const secure = await new TestRedis({
      tls: { cert: `${TLS}localhost.crt`, key: `${TLS}localhost.key` },
      password: 'fleet-s3cret',
    }).start();
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-fleet-tls-'));
    const serve = (url: string) =>
      startCli(['serve'], {
        MAILBRIDGE_SPOOL_DIR: join(dir, randomUUID()),
        MAILBRIDGE_REDIS_URL: url,
        MAILBRIDGE_LOG_LEVEL: 'info',
        NODE_EXTRA_CA_CERTS: `${TLS}localhost.crt`,
      });
    const good = serve(secure.url);
    const bad = serve(secure.url.replace('fleet-s3cret', 'wrong-password'));
    try {
      await good.waitForLog('redis connected: state shared with the fleet');
      const refused = await bad.waitForLog(
        'redis unreachable: dedupe records and client limits are local to this instance until it returns',
      );
      expect(String(refused.error)).to.match(/WRONGPASS|invalid password/i);
      // it starts all the same, on local state
      await bad.waitForLog('mailbridge started');
      expect(JSON.stringify([...good.logs, ...bad.logs])).to.not.include(
        'fleet-s3cret',
      );
    } finally {
      await good.kill();
      await bad.kill();
      await secure.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('/status sums the spool counts every instance publishes, with a row each', async () => {
    const queue = { delivery: { mode: 'queue' } };
    const a = await start(queue);
    const b = await start(queue);
    const status = (await (
      await fetch(`http://127.0.0.1:${a.daemon.httpPort}/status`)
    ).json()) as {
      fleet: {
        redis: { up: boolean };
        instance: string;
        total: Record<string, number>;
        instances: Array<{ instance: string; counts: Record<string, number> }>;
      };
    };
    expect(status.fleet.redis.up).to.equal(true);
    const names = status.fleet.instances.map(row => row.instance);
    expect(names).to.have.members([
      status.fleet.instance,
      status.fleet.instance.replace(/:\d+$/, `:${b.smtpPort}`),
    ]);
    for (const state of ['waiting', 'dead', 'held']) {
      expect(status.fleet.total[state]).to.equal(
        status.fleet.instances.reduce(
          (sum, r) => sum + (r.counts[state] ?? 0),
          0,
        ),
      );
    }
  });
});
