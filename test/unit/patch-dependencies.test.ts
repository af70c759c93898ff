// scripts/patch-dependencies.mjs: the speed patches to dependencies, in effect in this install,
// and each patched file the same in what it does as the original.
import { readFileSync } from 'node:fs';
import { Module } from 'node:module';
import { dirname, join } from 'node:path';
import { Readable, type Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  PATCHES,
  applyPatches,
  packageDir,
  patchText,
} from '../../scripts/patch-dependencies.mjs';
import { createRng, type Rng } from '../../fuzz/rng.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** A CommonJS module compiled from `text` as if it were the file `filename`. */
function compileAs<T>(filename: string, text: string): T {
  const module = new Module(filename) as Module & {
    _compile(text: string, filename: string): void;
    paths: string[];
  };
  module.filename = filename;
  module.paths = (
    Module as unknown as { _nodeModulePaths(dir: string): string[] }
  )._nodeModulePaths(dirname(filename));
  module._compile(text, filename);
  return module.exports as T;
}

describe('scripts/patch-dependencies: speed patches to dependencies', () => {
  const patch = { find: 'a(1);\nb();', replace: 'a(2);\nb();' };
  const cases = [
    {
      name: 'the text found once: replaced',
      text: 'x\na(1);\nb();\ny',
      outcome: 'applied',
      after: 'x\na(2);\nb();\ny',
    },
    {
      name: 'already patched: left as it is',
      text: 'x\na(2);\nb();\ny',
      outcome: 'present',
      after: 'x\na(2);\nb();\ny',
    },
    {
      name: 'the text not found: left as it is',
      text: 'x\na(3);\nb();',
      outcome: 'missing',
      after: 'x\na(3);\nb();',
    },
    {
      name: 'the text found twice: left as it is',
      text: 'a(1);\nb();a(1);\nb();',
      outcome: 'missing',
      after: 'a(1);\nb();a(1);\nb();',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(patchText(c.text, patch)).to.deep.equal({
        outcome: c.outcome,
        text: c.after,
      });
    });
  }

  it('another version, or a package it cannot find: left alone, said, never thrown', () => {
    const [split] = PATCHES;
    if (!split) throw new Error('no patch');
    const outcomes = applyPatches(ROOT, {
      write: false,
      patches: [
        { ...split, version: '0.0.1' },
        { ...split, pkg: 'no-such-package-here', via: undefined },
      ],
    }).map(o => o.outcome);
    expect(outcomes[0]).to.equal('other version');
    expect(outcomes[1]).to.match(/^failed: .*no-such-package-here/);
  });

  it('every patch is in effect in this install (npm ci applies them)', () => {
    const outcomes = applyPatches(ROOT, { write: false });
    expect(outcomes.map(o => `${o.name}: ${o.outcome}`)).to.deep.equal(
      PATCHES.map(p => `${p.name}: present`),
    );
  });

  it('mailsplit: the patched splitter gives what the original gives, on random MIME cut at random', async () => {
    const [split] = PATCHES.filter(p => p.pkg === '@zone-eu/mailsplit');
    if (!split) throw new Error('no mailsplit patch');
    const file = join(packageDir(ROOT, split), split.file);
    const patched = readFileSync(file, 'utf8');
    const original = patched.replace(split.replace, split.find);
    expect(original).not.to.equal(patched);
    type Splitter = new () => Transform;
    const Patched = compileAs<Splitter>(file, patched);
    const Original = compileAs<Splitter>(file, original);

    /** What a splitter makes of the pieces: each object's type, headers or bytes. */
    async function objects(
      Split: Splitter,
      pieces: Buffer[],
    ): Promise<string[]> {
      const seen: string[] = [];
      const splitter = Readable.from(pieces).pipe(new Split());
      for await (const data of splitter as AsyncIterable<{
        type: string;
        value?: Buffer;
        getHeaders?: () => Buffer;
      }>) {
        const bytes = data.type === 'node' ? data.getHeaders?.() : data.value;
        seen.push(`${data.type} ${JSON.stringify(bytes?.toString('latin1'))}`);
      }
      return seen;
    }

    const rng = createRng(0x11f);
    for (let n = 0; n < 300; n++) {
      const raw = Buffer.from(mime(rng), 'latin1');
      const cuts = Array.from({ length: rng.int(0, 8) }, () =>
        rng.int(1, raw.length - 1),
      );
      cuts.sort((a, b) => a - b);
      const pieces = [0, ...cuts].map((from, k) =>
        raw.subarray(from, cuts[k] ?? raw.length),
      );
      expect(await objects(Patched, pieces)).to.deep.equal(
        await objects(Original, pieces),
      );
    }
  });
});

/** A random multipart message: bare CR, LF and CRLF, long lines, boundaries near misses. */
function mime(rng: Rng): string {
  const eol = () => rng.pick(['\r\n', '\r\n', '\n', '\r']);
  const line = () =>
    rng.pick([
      '',
      'text',
      'x'.repeat(rng.int(1, 300)),
      '--b1',
      '--b1--',
      '--b2',
      '-- b1',
      '.',
    ]);
  const body = () =>
    Array.from({ length: rng.int(0, 12) }, () => line() + eol()).join('');
  const part = (inner: boolean): string =>
    inner && rng.chance(0.3)
      ? `Content-Type: multipart/mixed; boundary=b2${eol()}${eol()}--b2${eol()}${eol()}${body()}--b2--${eol()}`
      : `Content-Type: text/plain${eol()}${eol()}${body()}`;
  return (
    `Subject: ${line()}${eol()}Content-Type: multipart/mixed; boundary=b1${eol()}${eol()}` +
    `${body()}--b1${eol()}${part(true)}--b1${eol()}${part(false)}--b1--${eol()}${body()}`
  );
}
