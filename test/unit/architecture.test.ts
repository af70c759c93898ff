// The house rule of docs/architecture.md: the folders of src/ import downward only. madge (in
// npm run lint) finds cycles between files; this finds an import that climbs a layer.
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Each folder of src/ and its layer: a folder may import only from a higher number. */
const LAYERS: Record<string, number> = {
  '(root)': 0, // cli.ts: argv -> command
  commands: 1,
  app: 2, // the composition root, cluster roles, process signals
  smtp: 3,
  intake: 4,
  queue: 5,
  api: 6, // the API sink, its HTTP transport and the post thread
  pipeline: 7, // the per-route step, the decision, the sink port
  dedupe: 8,
  spool: 8,
  map: 9,
  auth: 9, // sender authentication: SPF, DKIM, DMARC, ARC (mailauth) and the verdict
  parse: 10,
  routing: 10,
  state: 10, // the fleet's Redis (ioredis): the connection, its fallback, the published counts
  mail: 11,
  lib: 11,
  observability: 11,
  config: 12,
  errors: 13,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
    entry.isDirectory()
      ? sources(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** The top folder of a path under src/ ('(root)' for a file directly in it). */
function folderOf(path: string): string {
  const parts = relative(SRC, path).split('/');
  return parts.length > 1 ? parts[0]! : '(root)';
}

describe('architecture: the folders of src/', () => {
  const files = sources(SRC);

  it('every folder has a layer', () => {
    const folders = new Set(files.map(folderOf));
    expect([...folders].filter(f => !(f in LAYERS))).to.deep.equal([]);
  });

  it('import downward only (no folder imports one of its own layer or above)', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const to = folderOf(normalize(join(dirname(file), spec!)));
        if (to !== from && LAYERS[to]! <= LAYERS[from]!) {
          upward.push(`${relative(SRC, file)} -> ${spec}`);
        }
      }
    }
    expect(upward).to.deep.equal([]);
  });
});
