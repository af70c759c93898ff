// The table of mutators a case draws from, by name (the name is what a failure report shows).
import {
  bitFlip,
  lineEnds,
  nulBytes,
  overlongLine,
  splice,
  truncate,
} from './bytes.js';
import {
  eightBitHeaders,
  foldedHeader,
  giantHeader,
  headerSyntax,
  manyHeaders,
} from './headers.js';
import {
  badCharset,
  boundaryDamage,
  deepNesting,
  lyingCharset,
  manyParts,
  transferEncoding,
} from './mime.js';
import type { Mutator } from './text.js';

export type { Mutator } from './text.js';

/** A mutator, its name, and how often a case draws it relative to the others. */
export interface MutatorEntry {
  name: string;
  weight: number;
  mutate: Mutator;
}

/**
 * Every mutator. The expensive ones (megabytes of output: giant headers, overlong lines, many
 * fields or parts) weigh less, so that a 10,000-case run stays within minutes.
 */
export const MUTATORS: readonly MutatorEntry[] = [
  { name: 'truncate', weight: 3, mutate: truncate },
  { name: 'bitFlip', weight: 4, mutate: bitFlip },
  { name: 'splice', weight: 3, mutate: splice },
  { name: 'nulBytes', weight: 2, mutate: nulBytes },
  { name: 'overlongLine', weight: 1, mutate: overlongLine },
  { name: 'lineEnds', weight: 3, mutate: lineEnds },
  { name: 'giantHeader', weight: 1, mutate: giantHeader },
  { name: 'foldedHeader', weight: 2, mutate: foldedHeader },
  { name: 'manyHeaders', weight: 1, mutate: manyHeaders },
  { name: 'eightBitHeaders', weight: 3, mutate: eightBitHeaders },
  { name: 'headerSyntax', weight: 3, mutate: headerSyntax },
  { name: 'boundaryDamage', weight: 3, mutate: boundaryDamage },
  { name: 'deepNesting', weight: 2, mutate: deepNesting },
  { name: 'manyParts', weight: 1, mutate: manyParts },
  { name: 'badCharset', weight: 2, mutate: badCharset },
  { name: 'lyingCharset', weight: 2, mutate: lyingCharset },
  { name: 'transferEncoding', weight: 2, mutate: transferEncoding },
];

/** The mutator a draw in [0, 1) falls on, by weight. */
export function mutatorAt(draw: number): MutatorEntry {
  const total = MUTATORS.reduce((sum, m) => sum + m.weight, 0);
  let left = draw * total;
  for (const entry of MUTATORS) {
    left -= entry.weight;
    if (left < 0) return entry;
  }
  return MUTATORS[MUTATORS.length - 1]!;
}

/** The mutator called `name`; throws on an unknown name. */
export function mutatorNamed(name: string): MutatorEntry {
  const found = MUTATORS.find(m => m.name === name);
  if (!found) throw new Error(`no mutator named ${name}`);
  return found;
}
