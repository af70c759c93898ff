// The version in package.json, from src/ (tests) and dist/ (the build) alike.
import { readFileSync } from 'node:fs';

let version: string | undefined;

/** The package's version, read once. */
export function packageVersion(): string {
  version ??= (
    JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version: string }
  ).version;
  return version;
}
