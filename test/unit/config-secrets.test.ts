// Unit tables: secrets from files (<NAME>_FILE, passwordFile) and every configuration problem at once.
import { expect } from 'chai';
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { configProblems, loadConfig } from '../../src/config/load-config.js';
import { maskSecrets } from '../../src/config/mask-secrets.js';
import type { Config } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors/bridge-error.js';

const SHIPPED = fileURLToPath(new URL('../../config/', import.meta.url));

describe('config: secrets from files, every problem at once', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailbridge-secrets-'));
    copyFileSync(join(SHIPPED, 'default.yaml'), join(dir, 'default.yaml'));
    copyFileSync(
      join(SHIPPED, 'production.yaml'),
      join(dir, 'production.yaml'),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a file in the temp folder; `{dir}` in env values and layers is replaced by it. */
  function file(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  }

  function expand(env: Record<string, string>): Record<string, string> {
    return Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, v.replace('{dir}', dir)]),
    );
  }

  function load(env: Record<string, string>, local?: unknown): Config {
    if (local !== undefined) {
      file('local.yaml', stringify(local).replaceAll('{dir}', dir));
    }
    return loadConfig({ configDir: dir, env: expand(env) });
  }

  function problems(env: Record<string, string>, local?: unknown): string[] {
    try {
      load(env, local);
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      return configProblems(err as ConfigError).map(line =>
        line.replaceAll(dir, '{dir}'),
      );
    }
    throw new Error('expected a ConfigError, configuration loaded');
  }

  describe('<NAME>_FILE', () => {
    const values: Array<{
      title: string;
      files: Record<string, string>;
      env: Record<string, string>;
      path: (config: Config) => unknown;
      expected: unknown;
    }> = [
      {
        title: 'the token, its trailing newline removed',
        files: { token: 's3cret\n' },
        env: { MAILBRIDGE_API_TOKEN_FILE: '{dir}/token' },
        path: c => c.api.token,
        expected: 's3cret',
      },
      {
        title: 'CRLF and several trailing newlines go too',
        files: { token: 's3cret\r\n\r\n' },
        env: { MAILBRIDGE_API_TOKEN_FILE: '{dir}/token' },
        path: c => c.api.token,
        expected: 's3cret',
      },
      {
        title: 'without a newline, the content as it is (spaces kept)',
        files: { token: ' s3 cret ' },
        env: { MAILBRIDGE_API_TOKEN_FILE: '{dir}/token' },
        path: c => c.api.token,
        expected: ' s3 cret ',
      },
      {
        title: 'an empty MAILBRIDGE_API_TOKEN beside the file is unset',
        files: { token: 's3cret\n' },
        env: {
          MAILBRIDGE_API_TOKEN: '',
          MAILBRIDGE_API_TOKEN_FILE: '{dir}/token',
        },
        path: c => c.api.token,
        expected: 's3cret',
      },
      {
        title: 'an empty _FILE variable is unset',
        files: {},
        env: { MAILBRIDGE_API_TOKEN: 'direct', MAILBRIDGE_API_TOKEN_FILE: '' },
        path: c => c.api.token,
        expected: 'direct',
      },
      {
        title: 'every variable of the table takes _FILE (the URL)',
        files: { url: 'http://127.0.0.1:8080/api?access_token=x\n' },
        env: { MAILBRIDGE_API_URL_FILE: '{dir}/url' },
        path: c => c.api.url,
        expected: 'http://127.0.0.1:8080/api?access_token=x',
      },
      {
        title: 'a number from a file',
        files: { port: '2600\n' },
        env: { MAILBRIDGE_SMTP_PORT_FILE: '{dir}/port' },
        path: c => c.smtp.port,
        expected: 2600,
      },
    ];
    for (const row of values) {
      it(`${row.title} -> ${JSON.stringify(row.expected)}`, () => {
        for (const [name, content] of Object.entries(row.files)) {
          file(name, content);
        }
        expect(row.path(load(row.env))).to.equal(row.expected);
      });
    }

    const errors: Array<{
      title: string;
      files?: Record<string, string>;
      env: Record<string, string>;
      expected: string;
    }> = [
      {
        title: 'both the variable and its _FILE',
        files: { token: 'x' },
        env: {
          MAILBRIDGE_API_TOKEN: 'a',
          MAILBRIDGE_API_TOKEN_FILE: '{dir}/token',
        },
        expected:
          'api.token: set MAILBRIDGE_API_TOKEN or MAILBRIDGE_API_TOKEN_FILE, not both',
      },
      {
        title: 'a missing file',
        env: { MAILBRIDGE_API_TOKEN_FILE: '{dir}/gone' },
        expected:
          'api.token: MAILBRIDGE_API_TOKEN_FILE ({dir}/gone) does not exist',
      },
      {
        title: 'a folder',
        env: { MAILBRIDGE_API_TOKEN_FILE: '{dir}' },
        expected:
          'api.token: MAILBRIDGE_API_TOKEN_FILE ({dir}) cannot be read (EISDIR)',
      },
      {
        title: 'an empty file',
        files: { token: '\n' },
        env: { MAILBRIDGE_API_TOKEN_FILE: '{dir}/token' },
        expected: 'api.token: MAILBRIDGE_API_TOKEN_FILE ({dir}/token) is empty',
      },
      {
        title: 'a number file that is not one',
        files: { port: 'twenty-five\n' },
        env: { MAILBRIDGE_SMTP_PORT_FILE: '{dir}/port' },
        expected:
          'smtp.port: MAILBRIDGE_SMTP_PORT_FILE must be a whole number, got "twenty-five"',
      },
      {
        // production's "api.token: required" would name the same key: the cause comes alone
        title: 'a missing token file in production: the file, not "required"',
        env: {
          NODE_ENV: 'production',
          MAILBRIDGE_API_TOKEN_FILE: '{dir}/gone',
        },
        expected:
          'api.token: MAILBRIDGE_API_TOKEN_FILE ({dir}/gone) does not exist',
      },
    ];
    for (const row of errors) {
      it(`${row.title} -> "${row.expected}"`, () => {
        for (const [name, content] of Object.entries(row.files ?? {})) {
          file(name, content);
        }
        const local = row.env.NODE_ENV
          ? { routes: [{ match: 'a@example.com' }] }
          : undefined;
        expect(problems(row.env, local)).to.deep.equal([row.expected]);
      });
    }

    it('a file that cannot be read (no permission) names the variable', function () {
      // root reads any file: nothing to check there
      if (process.getuid?.() === 0) this.skip();
      const path = file('token', 'x');
      chmodSync(path, 0);
      expect(
        problems({ MAILBRIDGE_API_TOKEN_FILE: '{dir}/token' }),
      ).to.deep.equal([
        'api.token: MAILBRIDGE_API_TOKEN_FILE ({dir}/token) cannot be read (EACCES)',
      ]);
    });

    it('a token read from a file is masked like any token', () => {
      file('token', 's3cret\n');
      const config = load({ MAILBRIDGE_API_TOKEN_FILE: '{dir}/token' });
      expect(maskSecrets(config).api.token).to.equal('********');
      expect(JSON.stringify(maskSecrets(config))).to.not.include('s3cret');
    });
  });

  describe('smtp.auth.users[].passwordFile', () => {
    const TLS = { key: '/k.pem', cert: '/c.pem' };

    it('reads the password from the file and masks it', () => {
      file('pw', 'a-long-password\n');
      const config = load(
        {},
        {
          smtp: {
            tls: TLS,
            auth: { users: [{ username: 'u', passwordFile: '{dir}/pw' }] },
          },
        },
      );
      expect(config.smtp.auth.users).to.deep.equal([
        { username: 'u', password: 'a-long-password' },
      ]);
      expect(maskSecrets(config).smtp.auth.users[0]?.password).to.equal(
        '********',
      );
    });

    const rows: Array<[title: string, user: unknown, expected: string[]]> = [
      [
        'a missing file',
        { username: 'u', passwordFile: '{dir}/gone' },
        ['smtp.auth.users.0.password: passwordFile {dir}/gone does not exist'],
      ],
      [
        'both password and passwordFile',
        {
          username: 'u',
          password: 'a-long-password',
          passwordFile: '{dir}/pw',
        },
        ['smtp.auth.users.0.password: give password or passwordFile, not both'],
      ],
      [
        'a passwordFile that is not a path',
        { username: 'u', passwordFile: 7 },
        ['smtp.auth.users.0.password: passwordFile must name a file'],
      ],
    ];
    for (const [title, user, expected] of rows) {
      it(`${title} -> names the account`, () => {
        file('pw', 'a-long-password\n');
        expect(
          problems({}, { smtp: { tls: TLS, auth: { users: [user] } } }),
        ).to.deep.equal(expected);
      });
    }
  });

  describe('every problem at once, one line per wrong key', () => {
    const rows: Array<{
      title: string;
      env?: Record<string, string>;
      local: unknown;
      expected: string[];
    }> = [
      {
        title: 'three wrong keys in one file',
        local: {
          smtp: { port: 'abc', maxRecipients: 0 },
          api: { timeoutMs: -5 },
        },
        expected: [
          'smtp.port: Invalid input: expected number, received string',
          'smtp.maxRecipients: Too small: expected number to be >0',
          'api.timeoutMs: Too small: expected number to be >0',
        ],
      },
      {
        title: 'several unknown keys of one object',
        local: { smtp: { prot: 1, hots: 'x' } },
        expected: ['smtp.prot: unknown key', 'smtp.hots: unknown key'],
      },
      {
        title: 'a bad variable and a bad file key',
        env: { MAILBRIDGE_HTTP_PORT: 'x' },
        local: { routes: [{ match: 'not an address' }] },
        expected: [
          'http.port: MAILBRIDGE_HTTP_PORT must be a whole number, got "x"',
          'routes.0.match: must be an address, "*@domain" or "*"',
        ],
      },
      {
        title: "production's refusals together",
        env: { NODE_ENV: 'production' },
        local: { routes: [] },
        expected: [
          'api.token: required when NODE_ENV=production (set MAILBRIDGE_API_TOKEN or MAILBRIDGE_API_TOKEN_FILE)',
          'routes: at least one route is required when NODE_ENV=production',
        ],
      },
      {
        title: 'a broken layer alone: the rest is not validated without it',
        env: { MAILBRIDGE_HTTP_PORT: 'x' },
        local: '{',
        expected: ['{dir}/local.yaml: Flow map must end with a }'],
      },
    ];
    for (const row of rows) {
      it(`${row.title} -> ${row.expected.length} line(s)`, () => {
        const local =
          typeof row.local === 'string'
            ? (file('local.yaml', row.local), undefined)
            : row.local;
        const lines = problems(row.env ?? {}, local);
        expect(lines[0]?.split(' at line')[0]).to.equal(row.expected[0]);
        expect(lines.slice(1)).to.deep.equal(row.expected.slice(1));
      });
    }
  });
});
