// loadSpoolDir: spool.dir from the same layers as the configuration, nothing else required;
// and notASpool: a folder judged without writing to it.
import { expect } from 'chai';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadSpoolDir } from '../../src/config/spool-only.js';
import { ConfigError } from '../../src/errors/bridge-error.js';
import { notASpool } from '../../src/spool/is-spool.js';
import { Spool } from '../../src/spool/spool.js';

describe('loadSpoolDir', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailbridge-spool-only-'));
    writeFileSync(join(dir, 'default.yaml'), 'spool:\n  dir: ./var/spool\n');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function write(name: string, text: string): string {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  }

  const load = (env: NodeJS.ProcessEnv = {}, file?: string) =>
    loadSpoolDir({ configDir: dir, env, file });

  it('the default, resolved from the working folder', () => {
    expect(load()).to.equal(resolve('./var/spool'));
  });

  it('production: its file sets the folder, and no token or routes are asked for', () => {
    write(
      'production.yaml',
      'routes: []\nspool:\n  dir: /var/spool/mailbridge\n',
    );
    expect(load({ NODE_ENV: 'production' })).to.equal('/var/spool/mailbridge');
  });

  it('layers: local.yaml, then --config (or MAILBRIDGE_CONFIG), then MAILBRIDGE_SPOOL_DIR', () => {
    write('local.yaml', 'spool:\n  dir: /from/local\n');
    expect(load()).to.equal('/from/local');
    const file = write('extra.json', '{"spool":{"dir":"/from/file"}}');
    expect(load({}, file)).to.equal('/from/file');
    expect(load({ MAILBRIDGE_CONFIG: file })).to.equal('/from/file');
    expect(load({ MAILBRIDGE_SPOOL_DIR: '/from/env' }, file)).to.equal(
      '/from/env',
    );
  });

  it('a layer without spool.dir leaves the earlier one; other keys are not validated', () => {
    const file = write('other.yaml', 'api:\n  timeoutMs: soon\nbogus: 1\n');
    expect(load({}, file)).to.equal(resolve('./var/spool'));
  });

  const errors: Array<[string, string, string]> = [
    ['a --config file that is missing', '', 'configuration file not found'],
    [
      'spool.dir not a string',
      'spool:\n  dir: 5\n',
      'spool.dir: must be a non-empty string',
    ],
    ['spool not a mapping', 'spool: here\n', 'spool: must be a mapping'],
    ['a file that does not parse', 'spool: [\n', 'given.yaml'],
    // as the daemon reads it (config-files.ts): not taken as a file without spool.dir
    ['a file of a list, not keys', '- spool\n', 'must hold a mapping of keys'],
  ];
  for (const [name, text, message] of errors) {
    it(`${name}: a ConfigError naming it`, () => {
      const file = text ? write('given.yaml', text) : join(dir, 'none.yaml');
      expect(() => load({}, file))
        .to.throw(ConfigError)
        .with.property('message')
        .that.includes(message);
    });
  }
});

describe('notASpool', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailbridge-is-spool-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a spool the spool made is one', async () => {
    await new Spool(join(dir, 'spool')).init();
    expect(await notASpool(join(dir, 'spool'))).to.equal(null);
  });

  it('a missing folder, a file, a folder of something else: why not; nothing written', async () => {
    writeFileSync(join(dir, 'file'), 'x');
    mkdirSync(join(dir, 'half'));
    mkdirSync(join(dir, 'half', 'msg'));
    mkdirSync(join(dir, 'half', 'queue'));
    expect(await notASpool(join(dir, 'none'))).to.include('no such folder');
    expect(await notASpool(join(dir, 'file'))).to.include('not a folder');
    expect(await notASpool(join(dir, 'half'))).to.include(
      'it has no tmp/, dead/',
    );
    expect(readdirSync(dir).sort()).to.deep.equal(['file', 'half']);
    expect(readdirSync(join(dir, 'half')).sort()).to.deep.equal([
      'msg',
      'queue',
    ]);
  });
});
