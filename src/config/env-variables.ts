// MAILBRIDGE_* variables to configuration keys, and VAR_FILE: a secret read from a mounted file.
import { readFileSync } from 'node:fs';
import { setAt } from './tree.js';

/** A variable of the contract: its name, the key it sets, and how its text is read. */
export type EnvKey = readonly [
  name: string,
  key: string,
  type: 'string' | 'number',
];

/** Where a key's value came from, for the messages that name it. */
type Source = { name: string; raw: string };

/**
 * The configuration keys the environment sets, as a tree. Every variable of the table may
 * instead be given as `<NAME>_FILE`, a file whose content, less its trailing newlines, is the
 * value (Docker and Kubernetes secrets are mounted as files). Giving both, or a file that cannot
 * be read or is empty, is a problem naming the key and the variable; every problem is pushed
 * onto `problems`, so that all are reported at once.
 */
export function envTree(
  env: NodeJS.ProcessEnv,
  table: readonly EnvKey[],
  problems: string[],
): Record<string, unknown> {
  const tree: Record<string, unknown> = {};
  for (const [name, key, type] of table) {
    const source = readVariable(env, name, key, problems);
    if (!source) continue;
    let value: string | number = source.raw;
    if (type === 'number') {
      if (!/^\d+$/.test(source.raw.trim())) {
        problems.push(
          `${key}: ${source.name} must be a whole number, got "${source.raw}"`,
        );
        continue;
      }
      value = Number(source.raw);
    }
    setAt(tree, key.split('.'), value);
  }
  return tree;
}

/** The value of NAME or NAME_FILE (an empty variable counts as unset), or undefined. */
function readVariable(
  env: NodeJS.ProcessEnv,
  name: string,
  key: string,
  problems: string[],
): Source | undefined {
  const fileName = `${name}_FILE`;
  const direct = env[name];
  const path = env[fileName];
  const hasDirect = direct !== undefined && direct !== '';
  const hasFile = path !== undefined && path !== '';
  if (hasDirect && hasFile) {
    problems.push(`${key}: set ${name} or ${fileName}, not both`);
    return undefined;
  }
  if (hasDirect) return { name, raw: direct };
  if (!hasFile) return undefined;
  const raw = readSecretFile(path, problem =>
    problems.push(`${key}: ${fileName} (${path}) ${problem}`),
  );
  return raw === undefined ? undefined : { name: fileName, raw };
}

/**
 * A secret file's content less its trailing newlines (`echo secret > file` and most editors end
 * a file in one, never part of a token; the official Docker images' `file_env` drops them all
 * the same way, through the shell's `$(< file)`), or undefined when it cannot be used: `fail`
 * is told why, never what the file holds.
 */
export function readSecretFile(
  path: string,
  fail: (problem: string) => void,
): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(
      code === 'ENOENT'
        ? 'does not exist'
        : `cannot be read (${code ?? (err as Error).message})`,
    );
    return undefined;
  }
  const value = text.replace(/(\r?\n)+$/, '');
  if (value === '') {
    fail('is empty');
    return undefined;
  }
  return value;
}
