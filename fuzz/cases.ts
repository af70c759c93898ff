// The cases of a run: case N of seed S is a corpus message with 0 to 3 mutators applied, all drawn
// from a generator seeded by (S, N) alone, so any case can be made again on its own.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutatorAt } from './mutators/index.js';
import { caseSeed, createRng } from './rng.js';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CORPUS_DIR = join(ROOT, 'test/fixtures/corpus');

/** A message of the corpus: its path under the corpus folder and its bytes. */
export interface CorpusMessage {
  name: string;
  bytes: Buffer;
}

/** One message to send, and where it came from. */
export interface FuzzCase {
  /** the case number within the run (0 for a replayed file) */
  index: number;
  /** the run's seed */
  seed: number;
  /** the corpus message it started from, or the replayed file */
  source: string;
  /** the mutators applied, in order */
  mutators: string[];
  /** whether MAIL FROM declares SIZE= (a message over the limit is then refused at MAIL) */
  declareSize: boolean;
  bytes: Buffer;
}

/** Every `.eml` under `dir`, sorted by path so that case N picks the same one everywhere. */
export function loadCorpus(dir = CORPUS_DIR): CorpusMessage[] {
  const found: CorpusMessage[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.eml')) {
        found.push({ name: relative(dir, path), bytes: readFileSync(path) });
      }
    }
  };
  walk(dir);
  found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (found.length === 0) throw new Error(`no .eml files under ${dir}`);
  return found;
}

/**
 * Case `index` of a run seeded `seed`: one in 25 is a corpus message as it is (the control: it
 * should be accepted and posted), the others have 1 to 3 mutators applied.
 */
export function makeCase(
  corpus: readonly CorpusMessage[],
  seed: number,
  index: number,
): FuzzCase {
  const rng = createRng(caseSeed(seed, index));
  const source = rng.pick(corpus);
  const count = rng.chance(0.04)
    ? 0
    : 1 + (rng.chance(0.35) ? 1 : 0) + (rng.chance(0.1) ? 1 : 0);
  const mutators: string[] = [];
  let bytes = source.bytes;
  for (let n = 0; n < count; n++) {
    const entry = mutatorAt(rng.next());
    bytes = entry.mutate(bytes, rng);
    mutators.push(entry.name);
  }
  return {
    index,
    seed,
    source: source.name,
    mutators,
    declareSize: rng.chance(0.5),
    bytes,
  };
}

/** A clean message sent after the cases: the daemon must still take it. */
export function canary(seed: number): FuzzCase {
  const text = [
    'From: Fuzz <fuzz@example.net>',
    'To: support@example.com',
    `Subject: canary after seed ${seed}`,
    `Message-ID: <canary-${seed}@fuzz.example.net>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Still there?',
    '',
  ].join('\r\n');
  return {
    index: -1,
    seed,
    source: 'canary',
    mutators: [],
    declareSize: true,
    bytes: Buffer.from(text),
  };
}
