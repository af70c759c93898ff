// The check of a route's threadFromSubject pattern (used by the schema and by the mapper).

/**
 * Why `pattern` cannot be a threadFromSubject, or undefined when it can: it must compile as a
 * JavaScript regular expression (no flags; `(?i:...)` makes a part case-insensitive), have at
 * least one capturing group, whose text becomes the thread id, and no quantified group holding
 * a quantifier (`(a+)+`, `(\w*)*`), the shape that backtracks exponentially.
 */
export function subjectPatternProblem(pattern: string): string | undefined {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern);
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
  // `x|` always matches the empty string: its result has one slot per capturing group
  const groups = new RegExp(`${regex.source}|`).exec('')!.length - 1;
  if (groups === 0) {
    return 'needs a capturing group (its first one is the thread id)';
  }
  return hasNestedQuantifier(pattern)
    ? 'has a repeated group that holds a repetition (like (a+)+), which can take exponential time'
    : undefined;
}

/** `*`, `+`, `{n,}` or `{n,m}` at `i`: a repetition of more than one (not `?`). */
function repeatsAt(pattern: string, i: number): boolean {
  const char = pattern[i];
  if (char === '*' || char === '+') return true;
  if (char !== '{') return false;
  const bound = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
  if (!bound) return false;
  if (bound[2] === undefined) return Number(bound[1]) > 1;
  return bound[3] === '' || Number(bound[3]) > 1;
}

/**
 * Whether a repeated group holds a repetition (star height above one), in one pass: escapes
 * and character classes are skipped, each open group remembers whether it repeats inside.
 */
export function hasNestedQuantifier(pattern: string): boolean {
  const open: boolean[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === '\\') {
      i++;
    } else if (char === '[') {
      i = classEnd(pattern, i);
    } else if (char === '(') {
      open.push(false);
    } else if (char === ')') {
      const inner = open.pop() ?? false;
      const repeated = repeatsAt(pattern, i + 1);
      if (inner && repeated) return true;
      if ((inner || repeated) && open.length) open[open.length - 1] = true;
    } else if (repeatsAt(pattern, i) && open.length) {
      open[open.length - 1] = true;
    }
  }
  return false;
}

/** The index of the `]` closing the class opened at `start` (escapes inside skipped). */
function classEnd(pattern: string, start: number): number {
  for (let i = start + 1; i < pattern.length; i++) {
    if (pattern[i] === '\\') i++;
    else if (pattern[i] === ']' && i > start + 1) return i;
  }
  return pattern.length;
}
