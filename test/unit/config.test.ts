// Unit tables for loadConfig and maskSecrets, on a temporary config folder written per test.
import { expect } from 'chai';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { dnsServerAddress } from '../../src/config/schema.js';
import {
  assertDryRunOnLoopback,
  isDryRun,
  isLoopbackHost,
} from '../../src/config/dry-run.js';
import {
  configProblems,
  loadConfig,
  type LoadConfigOptions,
} from '../../src/config/load-config.js';
import { maskSecrets } from '../../src/config/mask-secrets.js';
import { RESERVED_FIELDS, type Config } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors/bridge-error.js';

const SHIPPED = fileURLToPath(new URL('../../config/', import.meta.url));

/** A layer's content: an object (written as YAML or JSON by extension) or raw text. */
type Layer = Record<string, unknown> | unknown[] | string;

describe('config', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailbridge-config-'));
    copyFileSync(join(SHIPPED, 'default.yaml'), join(dir, 'default.yaml'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes `name` into the temp folder and returns its path. */
  function write(name: string, content: Layer): string {
    const path = join(dir, name);
    const text =
      typeof content === 'string'
        ? content
        : name.endsWith('.json')
          ? JSON.stringify(content)
          : stringify(content);
    writeFileSync(path, text);
    return path;
  }

  function load(env: NodeJS.ProcessEnv = {}, file?: string): Config {
    return loadConfig({ configDir: dir, env, file });
  }

  /** Every line (one per wrong key) of the ConfigError that loading throws. */
  function loadErrors(env: NodeJS.ProcessEnv = {}, file?: string): string[] {
    try {
      load(env, file);
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      return configProblems(err as ConfigError);
    }
    throw new Error('expected a ConfigError, configuration loaded');
  }

  /** The first line of the ConfigError that loading throws. */
  function loadError(env: NodeJS.ProcessEnv = {}, file?: string): string {
    return loadErrors(env, file)[0] ?? '';
  }

  function at(config: Config, path: string): unknown {
    return path
      .split('.')
      .reduce<unknown>(
        (node, key) => (node as Record<string, unknown>)[key],
        config,
      );
  }

  describe('defaults', () => {
    const rows: Array<[path: string, value: unknown]> = [
      ['api.url', 'https://api.algoreg.com/api/v1/message'],
      ['api.token', null],
      ['smtp.host', '127.0.0.1'],
      ['smtp.port', 2525],
      // a 25 MB attachment (Gmail's most) is about 34 MB once base64-encoded
      ['smtp.maxMessageSize', 41943040],
      // the drain stays below docker stop's 10 s
      ['smtp.closeTimeoutMs', 5000],
      ['delivery.shutdownTimeoutMs', 2000],
      // the deadlines a slow sender never meets: a line a minute, DATA 10 min + 500 B/s
      ['smtp.commandTimeoutMs', 60000],
      ['smtp.dataTimeoutMs', 600000],
      ['smtp.dataMinRate', 500],
      ['smtp.sessionTimeoutMs', 1800000],
      ['http.host', '127.0.0.1'],
      ['http.port', 9025],
      ['spool.dir', './var/spool'],
      ['delivery.dedupeWindowMs', 604800000],
      ['delivery.dedupeMaxRecords', 2000000],
      // 30 days
      ['delivery.heldRetentionMs', 2592000000],
      ['log.level', 'info'],
      ['mapping.content', 'auto'],
      ['mapping.remoteImages', 'block'],
      ['auth.dns.servers', []],
      ['auth.dns.timeoutMs', 5000],
      ['mapping.priority', { high: 1, normal: null, low: 5 }],
      ['routes', [{ match: '*', thread_from_subaddress: false, fields: {} }]],
    ];
    for (const [path, value] of rows) {
      it(`${path} = ${JSON.stringify(value)}`, () => {
        expect(at(load(), path)).to.deep.equal(value);
      });
    }

    it('is frozen all the way down', () => {
      const config = load();
      expect(Object.isFrozen(config)).to.equal(true);
      expect(Object.isFrozen(config.smtp)).to.equal(true);
      expect(Object.isFrozen(config.routes)).to.equal(true);
      expect(Object.isFrozen(config.routes[0])).to.equal(true);
    });
  });

  describe('layering, later wins', () => {
    const rows: Array<{
      title: string;
      layers: Record<string, Layer>;
      env?: NodeJS.ProcessEnv;
      file?: string;
      expect: Array<[path: string, value: unknown]>;
    }> = [
      {
        title: 'NODE_ENV layer over default, objects merged',
        layers: { 'staging.yaml': { smtp: { port: 2600 } } },
        env: { NODE_ENV: 'staging' },
        expect: [
          ['smtp.port', 2600],
          ['smtp.host', '127.0.0.1'],
        ],
      },
      {
        title: 'a NODE_ENV without a file changes nothing',
        layers: {},
        env: { NODE_ENV: 'qa' },
        expect: [['smtp.port', 2525]],
      },
      {
        title: 'no NODE_ENV: its layer is not read',
        layers: { 'staging.yaml': { smtp: { port: 2600 } } },
        expect: [['smtp.port', 2525]],
      },
      {
        title: 'local.yaml over the NODE_ENV layer',
        layers: {
          'staging.yaml': { smtp: { port: 2600 }, log: { level: 'debug' } },
          'local.yaml': { smtp: { port: 2700 } },
        },
        env: { NODE_ENV: 'staging' },
        expect: [
          ['smtp.port', 2700],
          ['log.level', 'debug'],
        ],
      },
      {
        title: 'local.yaml without NODE_ENV',
        layers: { 'local.yaml': { smtp: { port: 2700 } } },
        expect: [['smtp.port', 2700]],
      },
      {
        title: 'the --config file over local.yaml',
        layers: {
          'local.yaml': { smtp: { port: 2700, host: '0.0.0.0' } },
          'extra.yaml': { smtp: { port: 2800 } },
        },
        file: 'extra.yaml',
        expect: [
          ['smtp.port', 2800],
          ['smtp.host', '0.0.0.0'],
        ],
      },
      {
        title: 'environment variables over the --config file',
        layers: { 'extra.yaml': { smtp: { port: 2800 } } },
        file: 'extra.yaml',
        env: { MAILBRIDGE_SMTP_PORT: '2900' },
        expect: [['smtp.port', 2900]],
      },
      {
        title: 'every layer at once',
        layers: {
          'staging.yaml': { smtp: { port: 2600 }, http: { port: 9600 } },
          'local.yaml': { smtp: { port: 2700 }, api: { timeoutMs: 700 } },
          'extra.json': { smtp: { port: 2800 }, log: { level: 'warn' } },
        },
        file: 'extra.json',
        env: { NODE_ENV: 'staging', MAILBRIDGE_SMTP_PORT: '2900' },
        expect: [
          ['smtp.port', 2900],
          ['http.port', 9600],
          ['api.timeoutMs', 700],
          ['log.level', 'warn'],
        ],
      },
      {
        title: 'arrays replaced, not concatenated',
        layers: {
          'local.yaml': { routes: [{ match: 'a@example.com' }] },
        },
        expect: [
          [
            'routes',
            [
              {
                match: 'a@example.com',
                thread_from_subaddress: false,
                fields: {},
              },
            ],
          ],
        ],
      },
      {
        title: 'an empty array replaces too',
        layers: { 'extra.yml': { routes: [] } },
        file: 'extra.yml',
        expect: [['routes', []]],
      },
      {
        title: 'nested objects merged key by key',
        layers: { 'local.yaml': { mapping: { priority: { high: 9 } } } },
        expect: [['mapping.priority', { high: 9, normal: null, low: 5 }]],
      },
      {
        title: 'null replaces a value',
        layers: {
          'local.yaml': { smtp: { hostname: 'mx.example.com' } },
          'extra.yaml': { smtp: { hostname: null } },
        },
        file: 'extra.yaml',
        expect: [['smtp.hostname', null]],
      },
      {
        title: 'an empty layer file changes nothing',
        layers: { 'local.yaml': '' },
        expect: [['smtp.port', 2525]],
      },
      {
        title: 'a comment-only layer file changes nothing',
        layers: { 'local.yaml': '# nothing here\n' },
        expect: [['smtp.port', 2525]],
      },
      {
        title: 'MAILBRIDGE_CONFIG names the --config file',
        layers: { 'extra.yaml': { smtp: { port: 2800 } } },
        env: { MAILBRIDGE_CONFIG: 'extra.yaml' },
        expect: [['smtp.port', 2800]],
      },
      {
        title: 'the file option wins over MAILBRIDGE_CONFIG',
        layers: {
          'a.yaml': { smtp: { port: 2801 } },
          'b.yaml': { smtp: { port: 2802 } },
        },
        env: { MAILBRIDGE_CONFIG: 'a.yaml' },
        file: 'b.yaml',
        expect: [['smtp.port', 2802]],
      },
      {
        title: 'a route match is lower-cased',
        layers: {
          'local.yaml': { routes: [{ match: 'Support@Example.COM' }] },
        },
        expect: [['routes.0.match', 'support@example.com']],
      },
    ];
    for (const row of rows) {
      it(row.title, () => {
        for (const [name, content] of Object.entries(row.layers)) {
          write(name, content);
        }
        const env = { ...row.env };
        if (env.MAILBRIDGE_CONFIG) {
          env.MAILBRIDGE_CONFIG = join(dir, env.MAILBRIDGE_CONFIG);
        }
        const config = load(env, row.file && join(dir, row.file));
        for (const [path, value] of row.expect) {
          expect(at(config, path), path).to.deep.equal(value);
        }
      });
    }

    it('overrides are applied after the environment', () => {
      const config = loadConfig({
        configDir: dir,
        env: { MAILBRIDGE_SMTP_PORT: '2900' },
        overrides: { smtp: { port: 3000 } },
      });
      expect(config.smtp.port).to.equal(3000);
      expect(config.smtp.host).to.equal('127.0.0.1');
    });

    it('MAILBRIDGE_CONFIG_DIR names the folder when configDir is not given', () => {
      write('local.yaml', { smtp: { port: 2701 } });
      const config = loadConfig({ env: { MAILBRIDGE_CONFIG_DIR: dir } });
      expect(config.smtp.port).to.equal(2701);
    });
  });

  describe('environment variables', () => {
    const rows: Array<
      [name: string, value: string, path: string, expected: unknown]
    > = [
      [
        'MAILBRIDGE_API_URL',
        'http://127.0.0.1:8080/api/v1/message',
        'api.url',
        'http://127.0.0.1:8080/api/v1/message',
      ],
      ['MAILBRIDGE_API_TOKEN', 's3cret', 'api.token', 's3cret'],
      ['MAILBRIDGE_SMTP_HOST', '0.0.0.0', 'smtp.host', '0.0.0.0'],
      ['MAILBRIDGE_SMTP_PORT', '2526', 'smtp.port', 2526],
      ['MAILBRIDGE_SMTP_PORT', ' 25 ', 'smtp.port', 25],
      ['MAILBRIDGE_SMTP_PORT', '0', 'smtp.port', 0],
      ['MAILBRIDGE_HTTP_HOST', '::1', 'http.host', '::1'],
      ['MAILBRIDGE_HTTP_PORT', '9100', 'http.port', 9100],
      ['MAILBRIDGE_SPOOL_DIR', '/srv/spool', 'spool.dir', '/srv/spool'],
      ['MAILBRIDGE_DELIVERY_MODE', 'sync', 'delivery.mode', 'sync'],
      ['MAILBRIDGE_LOG_LEVEL', 'debug', 'log.level', 'debug'],
      ['MAILBRIDGE_LOG_FORMAT', 'pretty', 'log.format', 'pretty'],
    ];
    for (const [name, value, path, expected] of rows) {
      it(`${name}=${JSON.stringify(value)} sets ${path}`, () => {
        expect(at(load({ [name]: value }), path)).to.deep.equal(expected);
      });
    }

    it('an empty value is ignored', () => {
      const names = [...new Set(rows.map(([name]) => name))];
      const env = Object.fromEntries(names.map(name => [name, '']));
      expect(load(env)).to.deep.equal(load());
    });

    it('variables outside the contract are ignored', () => {
      const config = load({ MAILBRIDGE_SMTP_MAXCLIENTS: '7', SMTP_PORT: '1' });
      expect(config).to.deep.equal(load());
    });

    const badNumbers = ['abc', '25.5', '-1', '1e3', '0x19', '25abc', '2 5'];
    for (const name of ['MAILBRIDGE_SMTP_PORT', 'MAILBRIDGE_HTTP_PORT']) {
      const key = name === 'MAILBRIDGE_SMTP_PORT' ? 'smtp.port' : 'http.port';
      for (const value of badNumbers) {
        it(`${name}=${JSON.stringify(value)} -> ConfigError naming ${key}`, () => {
          expect(loadError({ [name]: value })).to.equal(
            `${key}: ${name} must be a whole number, got "${value}"`,
          );
        });
      }
    }

    const badValues: Array<[name: string, value: string, key: string]> = [
      ['MAILBRIDGE_SMTP_PORT', '70000', 'smtp.port'],
      ['MAILBRIDGE_HTTP_PORT', '65536', 'http.port'],
      ['MAILBRIDGE_API_URL', 'not a url', 'api.url'],
      ['MAILBRIDGE_API_URL', 'ftp://example.com/x', 'api.url'],
      ['MAILBRIDGE_LOG_LEVEL', 'verbose', 'log.level'],
      ['MAILBRIDGE_LOG_FORMAT', 'text', 'log.format'],
      ['MAILBRIDGE_DELIVERY_MODE', 'fast', 'delivery.mode'],
    ];
    for (const [name, value, key] of badValues) {
      it(`${name}=${JSON.stringify(value)} -> ConfigError naming ${key}`, () => {
        expect(loadError({ [name]: value })).to.match(
          new RegExp(`^${key.replace('.', '\\.')}: `),
        );
      });
    }
  });

  describe('invalid configuration', () => {
    const unknown: Array<[layer: Layer, message: string]> = [
      [{ bogus: 1 }, 'bogus: unknown key'],
      [{ smtp: { prot: 25 } }, 'smtp.prot: unknown key'],
      [
        { mapping: { priority: { urgent: 1 } } },
        'mapping.priority.urgent: unknown key',
      ],
      [
        { routes: [{ match: '*', mailbox: 'x' }] },
        'routes.0.mailbox: unknown key',
      ],
      [
        { routes: [{ match: '*' }, { match: 'a@x.com', field: {} }] },
        'routes.1.field: unknown key',
      ],
    ];
    for (const [layer, message] of unknown) {
      it(`unknown key -> "${message}"`, () => {
        write('local.yaml', layer);
        expect(loadError()).to.equal(message);
      });
    }

    const wrongType: Array<[layer: Layer, key: string]> = [
      [{ smtp: { port: 'abc' } }, 'smtp.port'],
      [{ smtp: { port: 70000 } }, 'smtp.port'],
      [{ smtp: { port: 25.5 } }, 'smtp.port'],
      [{ smtp: { maxMessageSize: 0 } }, 'smtp.maxMessageSize'],
      [{ smtp: null }, 'smtp'],
      [{ api: { url: 'not a url' } }, 'api.url'],
      [{ api: { token: '' } }, 'api.token'],
      [{ api: { timeoutMs: -1 } }, 'api.timeoutMs'],
      [{ smtp: { inFlowDelayMs: -1 } }, 'smtp.inFlowDelayMs'],
      [{ smtp: { commandTimeoutMs: 0 } }, 'smtp.commandTimeoutMs'],
      [{ smtp: { dataTimeoutMs: 1.5 } }, 'smtp.dataTimeoutMs'],
      [{ smtp: { dataMinRate: -1 } }, 'smtp.dataMinRate'],
      [{ smtp: { sessionTimeoutMs: 'long' } }, 'smtp.sessionTimeoutMs'],
      // a client waiting at MAIL FROM longer than the idle limit would be dropped
      [
        { smtp: { inFlowDelayMs: 60000, socketTimeoutMs: 60000 } },
        'smtp.inFlowDelayMs',
      ],
      [{ smtp: { allowedNetworks: '10.0.0.0/8' } }, 'smtp.allowedNetworks'],
      [
        { smtp: { allowedNetworks: ['10.0.0.0/33'] } },
        'smtp.allowedNetworks.0',
      ],
      [
        { smtp: { allowedNetworks: ['::1', 'mail.example'] } },
        'smtp.allowedNetworks.1',
      ],
      [
        { smtp: { maxConnectionsPerClient: 0 } },
        'smtp.maxConnectionsPerClient',
      ],
      [
        { smtp: { connectionRatePerClient: -1 } },
        'smtp.connectionRatePerClient',
      ],
      [{ smtp: { tls: { key: '/etc/k.pem' } } }, 'smtp.tls.cert'],
      [{ smtp: { tls: { cert: '/etc/c.pem' } } }, 'smtp.tls.cert'],
      [{ smtp: { tls: { implicit: true } } }, 'smtp.tls.key'],
      [{ smtp: { tls: { required: true } } }, 'smtp.tls.key'],
      [{ smtp: { tls: { minVersion: 'TLSv1' } } }, 'smtp.tls.minVersion'],
      [
        { smtp: { auth: { users: [{ username: 'u', password: 'short' }] } } },
        'smtp.auth.users.0.password',
      ],
      // AUTH needs TLS, unless told otherwise
      [
        {
          smtp: {
            auth: { users: [{ username: 'u', password: 'long-enough' }] },
          },
        },
        'smtp.auth.users',
      ],
      [{ smtp: { auth: { required: true } } }, 'smtp.auth.required'],
      [
        { smtp: { auth: { users: [{ username: '' }] } } },
        'smtp.auth.users.0.username',
      ],
      [{ smtp: { proxyProtocol: 'yes' } }, 'smtp.proxyProtocol'],
      [{ smtp: { proxyProtocol: ['haproxy.local'] } }, 'smtp.proxyProtocol.0'],
      [{ delivery: { dedupeMaxRecords: 0 } }, 'delivery.dedupeMaxRecords'],
      [{ delivery: { heldRetentionMs: 0 } }, 'delivery.heldRetentionMs'],
      [{ http: { enabled: 'yes' } }, 'http.enabled'],
      [{ mapping: { content: 'rich' } }, 'mapping.content'],
      [{ mapping: { messageIdBrackets: 'no' } }, 'mapping.messageIdBrackets'],
      [{ mapping: { remoteImages: 'hide' } }, 'mapping.remoteImages'],
      [{ auth: { dns: { servers: ['dns.google'] } } }, 'auth.dns.servers.0'],
      [
        { auth: { dns: { servers: ['127.0.0.1:99999'] } } },
        'auth.dns.servers.0',
      ],
      [{ auth: { dns: { timeoutMs: 10 } } }, 'auth.dns.timeoutMs'],
      [{ auth: { resolver: 'x' } }, 'auth.resolver'],
      [
        { routes: [{ match: '*', senderAuth: 'strict' }] },
        'routes.0.senderAuth',
      ],
      [
        { routes: [{ match: '*', autoReplies: 'ignore' }] },
        'routes.0.autoReplies',
      ],
      [{ routes: [{ match: '*', bulk: true }] }, 'routes.0.bulk'],
      [{ mapping: { priority: { high: 'urgent' } } }, 'mapping.priority.high'],
      [{ routes: { match: '*' } }, 'routes'],
      [{ routes: [{ mailbox_id: 'mb' }] }, 'routes.0.match'],
      [{ routes: [{ match: 'not an address' }] }, 'routes.0.match'],
      [{ routes: [{ match: '*@' }] }, 'routes.0.match'],
      [{ routes: [{ match: '*', mailbox_id: '' }] }, 'routes.0.mailbox_id'],
      [
        { routes: [{ match: '*', thread_from_subaddress: 'yes' }] },
        'routes.0.thread_from_subaddress',
      ],
      [{ routes: [{ match: '*', fields: [] }] }, 'routes.0.fields'],
      [{ routes: [{ match: '*', catchAll: 'yes' }] }, 'routes.0.catchAll'],
      // only "*" takes any domain: catchAll elsewhere would mean nothing
      [
        { routes: [{ match: '*@example.org', catchAll: true }] },
        'routes.0.catchAll',
      ],
      [{ routes: [{ match: '*', postmaster: 1 }] }, 'routes.0.postmaster'],
      // postmaster mail has one home
      [
        {
          routes: [
            { match: 'a@example.com', postmaster: true },
            { match: 'b@example.com', postmaster: false },
            { match: 'c@example.com', postmaster: true },
          ],
        },
        'routes.2.postmaster',
      ],
    ];
    for (const [layer, key] of wrongType) {
      it(`${JSON.stringify(layer)} -> names ${key}`, () => {
        write('local.yaml', layer);
        expect(loadError()).to.match(
          new RegExp(`^${key.replace(/\./g, '\\.')}: `),
        );
      });
    }

    for (const field of RESERVED_FIELDS) {
      it(`a route setting the reserved field ${field} -> error`, () => {
        write('local.yaml', {
          routes: [{ match: '*', fields: { [field]: 'x' } }],
        });
        expect(loadError()).to.match(/^routes\.0\.fields: may not set /);
      });
    }

    it('a route setting other fields is fine', () => {
      write('local.yaml', {
        routes: [
          {
            match: '*',
            fields: { read: false, priority: 2, set_reminder: { delay: 1 } },
          },
        ],
      });
      expect(load().routes[0]?.fields).to.deep.equal({
        read: false,
        priority: 2,
        set_reminder: { delay: 1 },
      });
    });
  });

  describe('NODE_ENV=production', () => {
    beforeEach(() => {
      copyFileSync(
        join(SHIPPED, 'production.yaml'),
        join(dir, 'production.yaml'),
      );
    });
    const ROUTES = {
      routes: [{ match: 'support@example.com', mailbox_id: 'mb' }],
    };
    const rows: Array<{
      title: string;
      local?: Layer;
      env: NodeJS.ProcessEnv;
      error?: RegExp;
    }> = [
      {
        title: 'without a token -> error',
        local: ROUTES,
        env: {},
        error: /^api\.token: required when NODE_ENV=production/,
      },
      {
        title: 'with an empty token variable -> error',
        local: ROUTES,
        env: { MAILBRIDGE_API_TOKEN: '' },
        error: /^api\.token: required when NODE_ENV=production/,
      },
      {
        title: 'without routes -> error',
        env: { MAILBRIDGE_API_TOKEN: 'tok' },
        error: /^routes: at least one route is required/,
      },
      {
        title: 'without a URL -> error',
        local: { ...ROUTES, api: { url: null } },
        env: { MAILBRIDGE_API_TOKEN: 'tok' },
        error: /^api\.url: /,
      },
      {
        title: 'with a token and routes -> loads',
        local: ROUTES,
        env: { MAILBRIDGE_API_TOKEN: 'tok' },
      },
      {
        title: 'a "*" route without catchAll: true -> error (regression)',
        local: { routes: [{ match: 'a@example.com' }, { match: '*' }] },
        env: { MAILBRIDGE_API_TOKEN: 'tok' },
        error: /^routes\.1\.catchAll: must be true for a "\*" route/,
      },
      {
        title: 'a "*" route with catchAll: false -> error',
        local: { routes: [{ match: '*', catchAll: false }] },
        env: { MAILBRIDGE_API_TOKEN: 'tok' },
        error: /^routes\.0\.catchAll: /,
      },
      {
        title: 'a "*" route with catchAll: true -> loads',
        local: { routes: [{ match: '*', mailbox_id: 'mb', catchAll: true }] },
        env: { MAILBRIDGE_API_TOKEN: 'tok' },
      },
    ];
    for (const row of rows) {
      it(row.title, () => {
        if (row.local) write('local.yaml', row.local);
        const env = { NODE_ENV: 'production', ...row.env };
        if (row.error) {
          expect(loadError(env)).to.match(row.error);
        } else {
          const config = load(env);
          expect(config.api.token).to.equal('tok');
          expect(config.spool.dir).to.equal('/var/spool/mailbridge');
          expect(config.routes).to.have.length(1);
        }
      });
    }

    it('outside production no token is fine (dry-run)', () => {
      expect(load({ NODE_ENV: 'development' }).api.token).to.equal(null);
    });

    it('outside production a "*" route needs no catchAll (the shipped default)', () => {
      expect(load({ NODE_ENV: 'development' }).routes).to.deep.equal([
        { match: '*', thread_from_subaddress: false, fields: {} },
      ]);
    });
  });

  describe('config files', () => {
    const rows: Array<{
      title: string;
      name?: string;
      content?: Layer;
      error: RegExp;
    }> = [
      {
        title: 'a missing --config file',
        error: /missing\.yaml: configuration file not found$/,
      },
      {
        title: 'a --config file of another type',
        name: 'extra.toml',
        content: 'smtp = 1',
        error: /extra\.toml: must end in \.yaml, \.yml or \.json$/,
      },
      {
        title: 'a YAML syntax error',
        name: 'extra.yaml',
        content: 'smtp: [port: 1\n',
        error: /extra\.yaml: /,
      },
      {
        title: 'duplicate YAML keys',
        name: 'extra.yaml',
        content: 'smtp:\n  port: 1\n  port: 2\n',
        error: /extra\.yaml: /,
      },
      {
        title: 'a JSON syntax error',
        name: 'extra.json',
        content: '{"smtp": ',
        error: /extra\.json: /,
      },
      {
        title: 'a top-level list',
        name: 'extra.yaml',
        content: '- a\n- b\n',
        error: /extra\.yaml: must hold a mapping of keys$/,
      },
      {
        title: 'a top-level scalar',
        name: 'extra.json',
        content: '42',
        error: /extra\.json: must hold a mapping of keys$/,
      },
    ];
    for (const row of rows) {
      it(`${row.title} -> error`, () => {
        const path =
          row.name && row.content !== undefined
            ? write(row.name, row.content)
            : join(dir, 'missing.yaml');
        expect(loadError({}, path)).to.match(row.error);
      });
    }

    it('MAILBRIDGE_CONFIG naming a missing file -> error', () => {
      const path = join(dir, 'gone.yaml');
      expect(loadError({ MAILBRIDGE_CONFIG: path })).to.equal(
        `${path}: configuration file not found`,
      );
    });

    it('a missing default.yaml -> error', () => {
      rmSync(join(dir, 'default.yaml'));
      expect(loadError()).to.match(
        /default\.yaml: configuration file not found$/,
      );
    });

    it('a broken local.yaml -> error naming it', () => {
      write('local.yaml', 'smtp: {');
      expect(loadError()).to.match(/local\.yaml: /);
    });
  });

  describe('maskSecrets', () => {
    it('replaces the token and keeps everything else', () => {
      const config = load({ MAILBRIDGE_API_TOKEN: 'very-s3cret-token' });
      const masked = maskSecrets(config);
      expect(masked.api.token).to.equal('********');
      expect(JSON.stringify(masked)).to.not.include('very-s3cret-token');
      expect({ ...masked, api: { ...masked.api, token: 'x' } }).to.deep.equal({
        ...config,
        api: { ...config.api, token: 'x' },
      });
      expect(config.api.token, 'the input is untouched').to.equal(
        'very-s3cret-token',
      );
    });

    it('masks a password in api.url (regression)', () => {
      const config = load({
        MAILBRIDGE_API_URL: 'https://bridge:pa55word@api.example/v1/message',
      });
      const masked = maskSecrets(config);
      expect(masked.api.url).to.equal(
        'https://bridge:********@api.example/v1/message',
      );
      expect(JSON.stringify(masked)).to.not.include('pa55word');
    });

    it('masks credentials in the query string of api.url', () => {
      const config = load({
        MAILBRIDGE_API_URL: 'https://api.example/v1/message?api_key=k3y&x=1',
      });
      expect(maskSecrets(config).api.url).to.equal(
        'https://api.example/v1/message?api_key=********&x=1',
      );
    });

    it('masks the password of state.redis.url (MAILBRIDGE_REDIS_URL)', () => {
      const config = load({
        MAILBRIDGE_REDIS_URL: 'rediss://fleet:r3dis-pw@redis.example:6380/2',
      });
      expect(config.state.redis.url).to.equal(
        'rediss://fleet:r3dis-pw@redis.example:6380/2',
      );
      const masked = maskSecrets(config);
      expect(masked.state.redis.url).to.equal(
        'rediss://fleet:********@redis.example:6380/2',
      );
      expect(JSON.stringify(masked)).to.not.include('r3dis-pw');
    });

    it('refuses a state.redis.url that is not redis:// or rediss://', () => {
      expect(
        loadError({ MAILBRIDGE_REDIS_URL: 'http://redis.example' }),
      ).to.equal('state.redis.url: must be a redis:// or rediss:// URL');
    });

    it('masks the SMTP AUTH passwords, and keeps the user names', () => {
      write('local.yaml', {
        smtp: {
          tls: { key: '/etc/k.pem', cert: '/etc/c.pem' },
          auth: { users: [{ username: 'fwd', password: 'long-s3cret-pw' }] },
        },
      });
      const config = load();
      const masked = maskSecrets(config);
      expect(masked.smtp.auth.users).to.deep.equal([
        { username: 'fwd', password: '********' },
      ]);
      expect(JSON.stringify(masked)).to.not.include('long-s3cret-pw');
      expect(config.smtp.auth.users[0]?.password).to.equal('long-s3cret-pw');
    });

    it('leaves a missing token null', () => {
      const config = load();
      expect(maskSecrets(config)).to.deep.equal(config);
      expect(maskSecrets(config).api.token).to.equal(null);
    });
  });
});

describe('dry-run only on loopback', () => {
  /** The shipped defaults with these overrides (no token unless given). */
  function config(
    overrides: NonNullable<LoadConfigOptions['overrides']>,
  ): Config {
    return loadConfig({ configDir: SHIPPED, env: {}, overrides });
  }

  const hosts: Array<[host: string, loopback: boolean]> = [
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['LocalHost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.0.2.25', false],
    ['10.0.0.1', false],
    ['::ffff:192.0.2.25', false],
    ['2001:db8::1', false],
    ['mail.example.com', false],
    ['localhost.example.com', false],
  ];
  for (const [host, loopback] of hosts) {
    it(`smtp.host ${host}: ${loopback ? 'dry-run allowed' : 'api.token required'}`, () => {
      expect(isLoopbackHost(host)).to.equal(loopback);
      const check = () =>
        assertDryRunOnLoopback(config({ smtp: { host } }), undefined);
      if (loopback) expect(check).not.to.throw();
      else {
        expect(check).to.throw(
          ConfigError,
          `api.token: required when smtp.host (${host}) is not a loopback address`,
        );
      }
    });
  }

  it('a token, or NODE_ENV=production (checked at load), is never dry-run', () => {
    const open = { smtp: { host: '0.0.0.0' } };
    const withToken = config({ ...open, api: { token: 'tok' } });
    expect(isDryRun(withToken, undefined)).to.equal(false);
    expect(() => assertDryRunOnLoopback(withToken, undefined)).not.to.throw();
    expect(isDryRun(config(open), 'production')).to.equal(false);
    expect(() =>
      assertDryRunOnLoopback(config(open), 'production'),
    ).not.to.throw();
  });
});

describe('config: auth.dns.servers entries (dnsServerAddress)', () => {
  const cases: Array<[string, string | null]> = [
    ['10.0.0.53', '10.0.0.53'],
    ['127.0.0.1:5353', '127.0.0.1'],
    ['2001:db8::53', '2001:db8::53'],
    ['[2001:db8::53]:5353', '2001:db8::53'],
    ['[::1]', '::1'],
    ['dns.example.com', null],
    ['dns.example.com:53', null],
    ['127.0.0.1:0', null],
    ['127.0.0.1:65536', null],
    ['[127.0.0.1', null],
    ['', null],
  ];
  for (const [entry, address] of cases) {
    it(`${JSON.stringify(entry)} -> ${address ?? 'refused'}`, () => {
      expect(dnsServerAddress(entry)).to.equal(address);
    });
  }
});
