// Configuration trees (parsed YAML, environment layers, a running Config) walked by key path.

/** An object of keys, not an array or a scalar. */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at `path` (`['smtp', 'port']`), or undefined. */
export function valueAt(tree: unknown, path: string[]): unknown {
  return path.reduce<unknown>(
    (node, key) => (isMapping(node) ? node[key] : undefined),
    tree,
  );
}

/**
 * Sets the value at `path` (a copy of it), making the mappings on the way; undefined removes the
 * key.
 */
export function setAt(
  tree: Record<string, unknown>,
  path: string[],
  value: unknown,
): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    if (value === undefined) delete tree[head];
    else tree[head] = structuredClone(value);
    return;
  }
  if (!isMapping(tree[head])) tree[head] = {};
  setAt(tree[head] as Record<string, unknown>, rest, value);
}
