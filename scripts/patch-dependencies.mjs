// Patches to installed dependencies, applied by npm's postinstall (and by the Dockerfile, which
// installs with --ignore-scripts). Each is a speed-up that changes no behaviour, tied to the
// exact version it was written for, and made by replacing one exact piece of text: a version or
// a text that does not match, or any error, is left alone with a warning, never half-patched,
// and never fails the install (the daemon works the same without, only slower). Installed as
// another project's dependency, it patches nothing. test/unit/patch-dependencies
// .test.ts fails while a patch is not in effect, and holds each patched file to the original.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * @typedef {object} Patch
 * @property {string} name what it does, for the install's log
 * @property {string} pkg the package patched
 * @property {string} [via] the package whose dependency it is, when it is not ours
 * @property {string} version the version it was written for
 * @property {string} file the file patched, within the package
 * @property {string} find the text replaced: it must occur exactly once
 * @property {string} replace what replaces it
 */

/** @type {Patch[]} */
export const PATCHES = [
  {
    // the splitter's search for each line's LF went byte by byte with a counter kept in the
    // closure: about 0.4 ms of the post thread for each 100 KiB, a seventh of its work
    name: 'mailsplit finds line ends by indexOf',
    pkg: '@zone-eu/mailsplit',
    via: 'mailparser',
    version: '5.4.31',
    file: 'lib/message-splitter.js',
    find: [
      '                // find next <LF>',
      '                if (chunk[i] !== 0x0a) {',
      '                    i++;',
      '                    continue;',
      '                }',
    ].join('\n'),
    replace: [
      '                // find next <LF> (patched by mailbridge: by indexOf, not byte by byte)',
      '                if (chunk[i] !== 0x0a) {',
      '                    let lf = chunk.indexOf(0x0a, i);',
      '                    i = lf === -1 ? chunk.length : lf;',
      '                    continue;',
      '                }',
    ].join('\n'),
  },
];

/**
 * `text` with `patch` applied. `present`: it already was; `missing`: the text to replace is not
 * there exactly once (another version, or patched by hand), so nothing is changed.
 *
 * @param {string} text
 * @param {Pick<Patch, 'find' | 'replace'>} patch
 * @returns {{ outcome: 'applied' | 'present' | 'missing', text: string }}
 */
export function patchText(text, patch) {
  if (text.includes(patch.replace)) return { outcome: 'present', text };
  const at = text.indexOf(patch.find);
  if (at === -1 || text.indexOf(patch.find, at + 1) !== -1) {
    return { outcome: 'missing', text };
  }
  return {
    outcome: 'applied',
    text:
      text.slice(0, at) + patch.replace + text.slice(at + patch.find.length),
  };
}

/**
 * The installed package's folder, as the package that depends on it finds it.
 *
 * @param {string} root the project's folder
 * @param {Patch} patch
 */
export function packageDir(root, patch) {
  let require = createRequire(join(root, 'package.json'));
  if (patch.via) require = createRequire(require.resolve(patch.via));
  return dirname(require.resolve(`${patch.pkg}/package.json`));
}

/**
 * Applies each patch to the project's installed dependencies (or only looks, with `write`
 * false): what became of each.
 *
 * @param {string} root the project's folder
 * @param {{ patches?: Patch[], write?: boolean }} [options]
 * @returns {Array<{ name: string, file: string, outcome: string }>} each outcome: 'applied',
 *   'present', 'missing', 'other version', or 'failed: <why>' (nothing is thrown)
 */
export function applyPatches(root, { patches = PATCHES, write = true } = {}) {
  return patches.map(patch => {
    let file = patch.file;
    try {
      const dir = packageDir(root, patch);
      file = join(dir, patch.file);
      const { version } = JSON.parse(
        readFileSync(join(dir, 'package.json'), 'utf8'),
      );
      if (version !== patch.version) {
        return { name: patch.name, file, outcome: 'other version' };
      }
      const result = patchText(readFileSync(file, 'utf8'), patch);
      if (result.outcome === 'applied' && write) {
        // a new file renamed over the old: never half-written, and a file hard-linked from a
        // shared store (pnpm) is replaced here, not changed for every project linking it
        const fresh = `${file}.mailbridge-${process.pid}`;
        writeFileSync(fresh, result.text);
        renameSync(fresh, file);
      }
      return { name: patch.name, file, outcome: result.outcome };
    } catch (err) {
      return { name: patch.name, file, outcome: `failed: ${String(err)}` };
    }
  });
}

if (
  process.argv[1] &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href
) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  // npm sets INIT_CWD to where `npm install` ran: another project installing mailbridge as a
  // dependency keeps its copy of these libraries as it is
  const installer = process.env.INIT_CWD;
  if (installer && resolve(installer) !== resolve(root)) {
    console.log(
      'patch-dependencies: installed as a dependency, nothing patched',
    );
  } else {
    for (const { name, file, outcome } of applyPatches(root)) {
      const line = `patch-dependencies: ${name}: ${outcome} (${file})`;
      if (outcome === 'applied' || outcome === 'present') console.log(line);
      else console.warn(`${line}: left as it is, the daemon is only slower`);
    }
  }
}
