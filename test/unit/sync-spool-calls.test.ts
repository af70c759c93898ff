// The synchronous open/close/rename hot path (durable-fs, receive-to-file): DirSyncer syncs the
// folder at its path each round, and the plain descriptors of the receive path, which nothing
// would ever close if an error path forgot them (a FileHandle is closed when collected).
import { expect } from 'chai';
import {
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { receiveToFile } from '../../src/smtp/receive-to-file.js';
import { DirSyncer } from '../../src/lib/durable-fs.js';

/** What this process's open descriptors name, for those under `prefixes`. */
function openUnder(...prefixes: string[]): string[] {
  const targets: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used, closed meanwhile
    }
    if (prefixes.some(p => target.startsWith(p))) targets.push(target);
  }
  return targets;
}

describe('synchronous spool calls', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-review-sync-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('DirSyncer: a round asked for after its folder was replaced fsyncs the new folder, not the removed one', async () => {
    const syncer = new DirSyncer();
    const folder = join(dir, 'active');
    mkdirSync(folder);
    // a round runs, on a descriptor opened for it
    const first = syncer.sync(folder);
    // meanwhile the folder is replaced, and a commit renames a message into the new one and
    // asks for an fsync that starts after its rename
    rmSync(folder, { recursive: true });
    mkdirSync(folder);
    writeFileSync(join(folder, 'msg.eml'), 'x');
    const second = syncer.sync(folder);
    await first;
    // the second round's fsync is under way now: the folder it syncs must be the one at that
    // path, not the removed one the first round's descriptor still names
    const used = openUnder(folder);
    await second;
    expect(used).to.not.include(`${folder} (deleted)`);
  });

  describe('receiveToFile error paths leave no descriptor open', () => {
    const HEADER = Buffer.from(
      'X-Mailbridge-Queue: {"id":"T","routes":[]}\r\n',
    );
    const DATA = Buffer.from('Subject: x\r\n\r\nbody\r\n');

    it('a new file whose exclusive create fails (EEXIST): the file there left alone', async () => {
      const path = join(dir, 'ID.eml');
      await writeFile(path, 'theirs');
      for (const durable of [true, false]) {
        const failure = await receiveToFile(Readable.from([DATA]), path, {
          durable,
          header: HEADER,
        }).catch((err: NodeJS.ErrnoException) => err);
        expect((failure as NodeJS.ErrnoException).code).to.equal('EEXIST');
      }
      expect(openUnder(dir)).to.deep.equal([]);
      expect(await readdir(dir)).to.deep.equal(['ID.eml']);
    });
  });
});
