// The real command line in a child process: preview, check-config, usage errors and `serve`.
import { expect } from 'chai';
import { once } from 'node:events';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/run-cli.js';
import { sendRaw, makeMessage } from '../helpers/smtp-client.js';
import {
  freePort,
  startCli,
  type CliProcess,
} from '../helpers/spawn-daemon.js';

const EML = fileURLToPath(new URL('../fixtures/eml/', import.meta.url));
const PLAIN = join(EML, 'plain.eml');
const WITH_ATTACHMENT = join(EML, 'with-attachment.eml');

/** What with-attachment.eml attaches: the 256 byte values, in order. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const ROUTES_YAML = `routes:
  - match: support@example.com
    mailbox_id: mb-support
  - match: billing@example.com
    mailbox_id: mb-billing
`;

type Json = Record<string, unknown>;

/** stdout as one parsed JSON value per non-empty line. */
function jsonLines(stdout: string): Json[] {
  return stdout
    .split('\n')
    .filter(line => line.trim())
    .map(line => JSON.parse(line) as Json);
}

/** stderr as its non-empty lines. */
function lines(text: string): string[] {
  return text.split('\n').filter(line => line.trim());
}

describe('cli', () => {
  let dir: string;
  let routesFile: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-cli-'));
    routesFile = join(dir, 'routes.yaml');
    await writeFile(routesFile, ROUTES_YAML);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes a --config file into the temp dir and returns its path. */
  async function configFile(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  describe('preview', () => {
    it('prints one JSON line for the route, with the full base64 of the attachment', async () => {
      const result = await runCli([
        'preview',
        WITH_ATTACHMENT,
        '--rcpt',
        'support@example.com',
        '--config',
        routesFile,
      ]);
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      expect(result.stdout.endsWith('\n')).to.equal(true);
      expect(lines(result.stdout)).to.have.length(1);
      expect(jsonLines(result.stdout)).to.deep.equal([
        {
          from: 'jane@example.net',
          to: 'support@example.com',
          subject: 'All 256 byte values',
          content: '<div>See the attached file.<br>\n</div>',
          attachments: [
            { name: 'bytes.bin', file: ALL_BYTES.toString('base64') },
          ],
          ext_msg_id: '<attach-1@example.net>',
          mailbox_id: 'mb-support',
        },
      ]);
    });

    it('prints one line per route when --rcpt is given twice', async () => {
      const result = await runCli([
        'preview',
        PLAIN,
        '--rcpt',
        'support@example.com',
        '--rcpt',
        'billing@example.com',
        '--config',
        routesFile,
      ]);
      expect(result.code).to.equal(0);
      const bodies = jsonLines(result.stdout);
      expect(bodies.map(b => b.mailbox_id)).to.deep.equal([
        'mb-support',
        'mb-billing',
      ]);
      for (const body of bodies) {
        expect(body.ext_msg_id).to.equal('<plain-1@example.net>');
        expect(body.subject).to.equal('Printer on fire');
      }
    });

    it('without --rcpt uses the To and Cc addresses that have a route', async () => {
      // To: support@, Cc: billing@ and someone@elsewhere.example (no route)
      const result = await runCli(['preview', PLAIN, '--config', routesFile]);
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      const bodies = jsonLines(result.stdout);
      expect(bodies.map(b => b.mailbox_id)).to.deep.equal([
        'mb-support',
        'mb-billing',
      ]);
      expect(bodies[0]).to.include({
        to: 'support@example.com',
        cc: 'billing@example.com, someone@elsewhere.example',
      });
      expect(bodies[0]).to.not.have.property('bcc');
    });

    it('--pretty pretty-prints the same body', async () => {
      const args = ['preview', PLAIN, '--rcpt', 'support@example.com'];
      const [compact, pretty] = await Promise.all([
        runCli([...args, '--config', routesFile]),
        runCli([...args, '--pretty', '--config', routesFile]),
      ]);
      expect(pretty.code).to.equal(0);
      expect(lines(pretty.stdout).length).to.be.greaterThan(1);
      expect(pretty.stdout).to.match(/^\{\n {2}"from": "jane@example\.net",\n/);
      expect(JSON.parse(pretty.stdout)).to.deep.equal(
        JSON.parse(compact.stdout),
      );
    });

    it('a --rcpt without a route exits 1 naming it, printing nothing', async () => {
      const result = await runCli([
        'preview',
        PLAIN,
        '--rcpt',
        'support@example.com',
        '--rcpt',
        'nobody@elsewhere.example',
        '--config',
        routesFile,
      ]);
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.include('nobody@elsewhere.example');
      expect(result.stderr).to.not.include('support@example.com');
    });

    it('a missing file exits 1 naming it', async () => {
      const missing = join(dir, 'no-such.eml');
      const result = await runCli([
        'preview',
        missing,
        '--rcpt',
        'support@example.com',
        '--config',
        routesFile,
      ]);
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.include(missing);
    });

    it('no file argument exits 2 with usage', async () => {
      const result = await runCli(['preview', '--config', routesFile]);
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.include('preview').and.include('Usage');
    });
  });

  describe('check-config', () => {
    it('lists every wrong key at once, one line each, exit 2 (serve too)', async () => {
      const file = await configFile(
        'broken.yaml',
        'smtp:\n  maxRecipients: 0\n  prot: 1\nroutes:\n  - match: not an address\n',
      );
      const env = {
        MAILBRIDGE_HTTP_PORT: 'x',
        MAILBRIDGE_API_TOKEN_FILE: '/nonexistent/mailbridge-token',
      };
      const expected = [
        'mailbridge: invalid configuration: api.token: MAILBRIDGE_API_TOKEN_FILE (/nonexistent/mailbridge-token) does not exist',
        'mailbridge: invalid configuration: http.port: MAILBRIDGE_HTTP_PORT must be a whole number, got "x"',
        'mailbridge: invalid configuration: smtp.maxRecipients: Too small: expected number to be >0',
        'mailbridge: invalid configuration: smtp.prot: unknown key',
        'mailbridge: invalid configuration: routes.0.match: must be an address, "*@domain" or "*"',
      ];
      for (const command of ['check-config', 'serve']) {
        const result = await runCli([command, '--config', file], env);
        expect(result.code, command).to.equal(2);
        expect(result.stderr.trimEnd().split('\n'), command).to.deep.equal(
          expected,
        );
      }
    });

    it('reads the token from MAILBRIDGE_API_TOKEN_FILE and prints it masked', async () => {
      const token = await configFile('token', 'from-a-file-xyz\n');
      const result = await runCli(['check-config', '--config', routesFile], {
        MAILBRIDGE_API_TOKEN_FILE: token,
      });
      expect(result.code).to.equal(0);
      expect(result.stdout + result.stderr).to.not.include('from-a-file-xyz');
      const config = JSON.parse(result.stdout) as { api: { token: string } };
      expect(config.api.token).to.equal('********');
    });

    it('prints the effective configuration as JSON, token masked, exit 0', async () => {
      const result = await runCli(['check-config', '--config', routesFile], {
        MAILBRIDGE_API_TOKEN: 'secret-xyz',
        MAILBRIDGE_SMTP_PORT: '2600',
      });
      expect(result.code).to.equal(0);
      expect(result.stdout).to.not.include('secret-xyz');
      expect(result.stderr).to.not.include('secret-xyz');
      const config = JSON.parse(result.stdout) as {
        api: Json;
        smtp: Json;
        log: Json;
        routes: Json[];
      };
      expect(config.api.token).to.be.a('string').and.not.equal('');
      expect(config.api.token).to.match(/^\*+$/);
      // every layer is in: the environment, test.yaml and the --config file
      expect(config.smtp.port).to.equal(2600);
      expect(config.log.level).to.equal('error');
      expect(config.routes).to.deep.equal([
        {
          match: 'support@example.com',
          mailbox_id: 'mb-support',
          thread_from_subaddress: false,
          fields: {},
        },
        {
          match: 'billing@example.com',
          mailbox_id: 'mb-billing',
          thread_from_subaddress: false,
          fields: {},
        },
      ]);
    });

    const invalid: Array<[string, Record<string, string>, string, string]> = [
      // [case, env, --config file text (yaml), key named]
      [
        'MAILBRIDGE_SMTP_PORT=abc',
        { MAILBRIDGE_SMTP_PORT: 'abc' },
        '',
        'smtp.port',
      ],
      ['smtp.port: 70000', {}, 'smtp:\n  port: 70000\n', 'smtp.port'],
      ['an unknown key', {}, 'smtp:\n  prot: 25\n', 'smtp.prot'],
      ['an unknown top-level key', {}, 'queue:\n  dir: /tmp\n', 'queue'],
      [
        'a TLS key file that cannot be read',
        {
          MAILBRIDGE_SMTP_TLS_KEY: '/nonexistent/tls.key',
          MAILBRIDGE_SMTP_TLS_CERT: '/nonexistent/tls.crt',
        },
        '',
        'smtp.tls.key: cannot read /nonexistent/tls.key (ENOENT)',
      ],
      [
        'a TLS key without its certificate',
        { MAILBRIDGE_SMTP_TLS_KEY: '/nonexistent/tls.key' },
        '',
        'smtp.tls.cert',
      ],
    ];
    for (const [name, env, text, key] of invalid) {
      it(`${name}: exit 2 with one stderr line naming ${key}`, async () => {
        const args = ['check-config'];
        if (text) args.push('--config', await configFile('bad.yaml', text));
        const result = await runCli(args, env);
        expect(result.code).to.equal(2);
        expect(result.stdout).to.equal('');
        expect(lines(result.stderr)).to.have.length(1);
        expect(result.stderr).to.include(key);
      });
    }

    it('reads a --config file in .json', async () => {
      const file = await configFile(
        'config.json',
        JSON.stringify({
          smtp: { port: 2700 },
          routes: [{ match: '*@example.org', mailbox_id: 'mb-org' }],
        }),
      );
      const result = await runCli(['check-config', '--config', file]);
      expect(result.code).to.equal(0);
      const config = JSON.parse(result.stdout) as {
        smtp: Json;
        routes: Json[];
      };
      expect(config.smtp.port).to.equal(2700);
      expect(config.routes.map(r => r.mailbox_id)).to.deep.equal(['mb-org']);
    });

    it('no token and smtp.host off loopback: exit 2 naming api.token (regression)', async () => {
      const result = await runCli(['check-config', '--config', routesFile], {
        MAILBRIDGE_API_TOKNE: 'secret-xyz',
        MAILBRIDGE_SMTP_HOST: '192.0.2.25',
      });
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(lines(result.stderr)).to.have.length(1);
      expect(result.stderr).to.match(
        /^mailbridge: invalid configuration: api\.token: required when smtp\.host \(192\.0\.2\.25\)/,
      );
    });

    it('no token on loopback: valid, and says DRY-RUN', async () => {
      const result = await runCli(['check-config', '--config', routesFile], {
        MAILBRIDGE_SMTP_HOST: 'localhost',
      });
      expect(result.code).to.equal(0);
      expect(result.stderr).to.equal(
        'configuration is valid (DRY-RUN: no api.token, nothing will be posted)\n',
      );
    });

    it('NODE_ENV=production with a "*" route without catchAll: true: exit 2 naming it (regression)', async () => {
      const file = await configFile(
        'star.yaml',
        "routes:\n  - match: support@example.com\n  - match: '*'\n",
      );
      const result = await runCli(['check-config', '--config', file], {
        NODE_ENV: 'production',
        MAILBRIDGE_API_TOKEN: 'secret-xyz',
      });
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(lines(result.stderr)).to.have.length(1);
      expect(result.stderr).to.include('routes.1.catchAll');
      const allowed = await configFile(
        'star-ok.yaml',
        "routes:\n  - match: '*'\n    catchAll: true\n",
      );
      const ok = await runCli(['check-config', '--config', allowed], {
        NODE_ENV: 'production',
        MAILBRIDGE_API_TOKEN: 'secret-xyz',
      });
      expect(ok.code, ok.stderr).to.equal(0);
    });

    it('NODE_ENV=production without a token: exit 2 naming api.token', async () => {
      const result = await runCli(['check-config', '--config', routesFile], {
        NODE_ENV: 'production',
      });
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(lines(result.stderr)).to.have.length(1);
      expect(result.stderr).to.include('api.token');
    });

    it('NODE_ENV=production with a token but no routes: exit 2 naming routes', async () => {
      const result = await runCli(['check-config'], {
        NODE_ENV: 'production',
        MAILBRIDGE_API_TOKEN: 'secret-xyz',
      });
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(lines(result.stderr)).to.have.length(1);
      expect(result.stderr).to.include('routes');
      expect(result.stderr).to.not.include('secret-xyz');
    });

    it('NODE_ENV=production with a token and routes: exit 0', async () => {
      const result = await runCli(['check-config', '--config', routesFile], {
        NODE_ENV: 'production',
        MAILBRIDGE_API_TOKEN: 'secret-xyz',
      });
      expect(result.code).to.equal(0);
      expect(result.stdout + result.stderr).to.not.include('secret-xyz');
      const config = JSON.parse(result.stdout) as { spool: Json };
      expect(config.spool.dir).to.equal('/var/spool/mailbridge');
    });
  });

  describe('commands', () => {
    it('an unknown command exits 2 naming it', async () => {
      const result = await runCli(['frobnicate']);
      expect(result.code).to.equal(2);
      expect(result.stderr).to.include('frobnicate');
    });

    it('--help prints the usage and exits 0', async () => {
      const result = await runCli(['--help']);
      expect(result.code).to.equal(0);
      expect(result.stdout).to.include('Usage: mailbridge');
      expect(result.stdout).to.include('check-config');
    });

    it('queue without an action exits 2', async () => {
      const result = await runCli(['queue']);
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.include('queue needs an action');
    });
  });

  describe('serve', () => {
    let daemon: CliProcess | undefined;

    afterEach(async () => {
      await daemon?.kill();
      daemon = undefined;
    });

    it('starts on the given ports, writes a dry-run body and says so, exits 0 on SIGTERM', async () => {
      const smtpPort = await freePort();
      const httpPort = await freePort();
      const spoolDir = join(dir, 'spool');
      daemon = startCli(['serve'], {
        MAILBRIDGE_SMTP_PORT: String(smtpPort),
        MAILBRIDGE_HTTP_PORT: String(httpPort),
        MAILBRIDGE_SPOOL_DIR: spoolDir,
        MAILBRIDGE_LOG_LEVEL: 'info',
      });
      const started = await daemon.waitForLog('mailbridge started');
      expect(started).to.include({
        smtp: `127.0.0.1:${smtpPort}`,
        http: `127.0.0.1:${httpPort}`,
        dryRun: true,
        spool: spoolDir,
      });
      // said loudly (issue 16): a warn line at start
      const warned = daemon.logs.find(l => l.level === 'warn');
      expect(String(warned?.message)).to.match(/^DRY-RUN: no api\.token/);
      expect(await httpStatus(httpPort, '/healthz')).to.equal(200);

      const sent = await sendRaw({
        port: smtpPort,
        to: ['support@example.com'],
        raw: makeMessage({
          From: 'jane@example.net',
          To: 'support@example.com',
          Subject: 'Served',
          'Message-ID': '<serve-1@example.net>',
        }),
      });
      expect(sent.code).to.equal(250);
      // queue mode, the default: 250 once stored, the dry-run body written by a worker
      const queueId = /queued as (\S+)/.exec(sent.response)?.[1];
      expect(queueId, sent.response).to.be.a('string');
      // never "message delivered" for a body that went to disk (issue 16)
      const notPosted = await daemon.waitForLog(
        'message NOT POSTED (dry-run: no api.token)',
      );
      expect(notPosted).to.include({
        queueId,
        outcome: 'dry-run',
        level: 'warn',
      });
      const written = JSON.parse(
        await readFile(join(spoolDir, 'dry-run', `${queueId}-0.json`), 'utf8'),
      ) as Json;
      expect(written).to.include({
        subject: 'Served',
        ext_msg_id: '<serve-1@example.net>',
      });

      daemon.child.kill('SIGTERM');
      const exit = await daemon.exited;
      expect(exit).to.deep.equal({ code: 0, signal: null });
      expect(daemon.logs.map(l => l.message))
        .to.include('mailbridge stopped')
        .and.not.include('message delivered');
      expect(daemon.stderr()).to.equal('');
    });

    // Regression: the signal listeners were installed only after "mailbridge started" was
    // logged, so a SIGTERM sent on that line could kill the process (signal, no exit code).
    // Several daemons at once make the old window show up reliably.
    it('exits 0 on a SIGTERM sent the moment the start line appears', async () => {
      // port 0: three ports found free beforehand could still be taken before they listen
      const daemons = [0, 1, 2].map(i =>
        startCli(['serve'], {
          MAILBRIDGE_SMTP_PORT: '0',
          MAILBRIDGE_HTTP_PORT: '0',
          MAILBRIDGE_SPOOL_DIR: join(dir, `spool-${i}`),
          MAILBRIDGE_LOG_LEVEL: 'info',
        }),
      );
      try {
        const exits = await Promise.all(
          daemons.map(async d => {
            await d.waitForLog('mailbridge started');
            d.child.kill('SIGTERM');
            return d.exited;
          }),
        );
        expect(exits).to.deep.equal([
          { code: 0, signal: null },
          { code: 0, signal: null },
          { code: 0, signal: null },
        ]);
      } finally {
        await Promise.all(daemons.map(d => d.kill()));
      }
    });

    // Regression (issue 16): a misspelt token variable on a public listener made a daemon
    // that answered 250 for any domain and posted nothing.
    it('a misspelt token with a listener off loopback: exit 2 naming api.token, nothing listens', async () => {
      daemon = startCli(['serve'], {
        MAILBRIDGE_API_TOKNE: 'secret-xyz',
        MAILBRIDGE_SMTP_HOST: '0.0.0.0',
        MAILBRIDGE_SMTP_PORT: '0',
        MAILBRIDGE_HTTP_PORT: '0',
        MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
        MAILBRIDGE_LOG_LEVEL: 'info',
      });
      const started = await daemon.waitForLog('mailbridge started').then(
        () => true,
        () => false,
      );
      expect(started, 'the daemon started').to.equal(false);
      expect(await daemon.exited).to.deep.equal({ code: 2, signal: null });
      expect(lines(daemon.stderr())).to.deep.equal([
        'mailbridge: invalid configuration: api.token: required when smtp.host (0.0.0.0) ' +
          'is not a loopback address; without it mail would be accepted and never posted ' +
          '(set MAILBRIDGE_API_TOKEN)',
      ]);
      expect(daemon.logs).to.deep.equal([]);
    });

    it('exits 1 with a log line when the SMTP port is taken', async () => {
      const blocker = createServer();
      blocker.listen(0, '127.0.0.1');
      await once(blocker, 'listening');
      try {
        const { port } = blocker.address() as AddressInfo;
        daemon = startCli(['serve'], {
          MAILBRIDGE_SMTP_PORT: String(port),
          MAILBRIDGE_HTTP_PORT: '0',
          MAILBRIDGE_SPOOL_DIR: join(dir, 'spool'),
        });
        const failed = await daemon.waitForLog('mailbridge failed to start');
        expect(failed).to.include({ level: 'error', code: 'EADDRINUSE' });
        expect(await daemon.exited).to.deep.equal({ code: 1, signal: null });
      } finally {
        await new Promise(done => blocker.close(done));
      }
    });
  });
});

/** The status code of a GET on the local health listener. */
function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, res => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}
