// A failing case's message written to disk (with what happened beside it, as JSON), so that
// `npm run fuzz -- --replay FILE` sends exactly those bytes again.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CaseRef } from './report.js';

/** The folder failures go to by default (gitignored). */
export const FAILURES_DIR = 'fuzz-failures';

/** Writes `bytes` as `<dir>/seed-S-case-N.eml` and its story as `.json`; returns the .eml path. */
export function writeCase(
  dir: string,
  ref: CaseRef,
  bytes: Buffer,
  story: Record<string, unknown>,
): string {
  mkdirSync(dir, { recursive: true });
  const name = ref.file
    ? `replay-${basename(ref.file, '.eml')}`
    : `seed-${ref.seed}-case-${ref.index}`;
  const path = join(dir, `${name}.eml`);
  writeFileSync(path, bytes);
  writeFileSync(
    join(dir, `${name}.json`),
    `${JSON.stringify({ ...ref, ...story }, null, 2)}\n`,
  );
  return path;
}
