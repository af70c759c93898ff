// writeFully: every byte written, also when a write takes only part of them.
import { expect } from 'chai';
import { closeSync, openSync, readdirSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  open,
  readFile,
  rm,
  type FileHandle,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DirSyncer,
  exists,
  fdWriter,
  writeFully,
  writeFullySync,
} from '../../src/lib/durable-fs.js';

describe('writeFully and exists', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-write-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes several buffers from a position, and appends where none is given', async () => {
    const path = join(dir, 'f');
    const handle = await open(path, 'w');
    await writeFully(handle, [Buffer.from('head '), Buffer.from('body')], 0);
    await handle.close();
    const log = await open(path, 'a');
    await writeFully(log, [Buffer.from(' more')]);
    await log.close();
    expect(await readFile(path, 'utf8')).to.equal('head body more');
  });

  /**
   * A handle whose writes take at most `max` bytes each, as a filling disk does (a real one
   * needs a file size limit: see partial-write.test.ts, which runs the daemon under ulimit).
   */
  function shortWrites(max: number) {
    const written: Array<{ bytes: string; position: number | null }> = [];
    const take = (bytes: Buffer, position: number | null) => {
      const part = bytes.subarray(0, max);
      written.push({ bytes: part.toString(), position });
      return { bytesWritten: part.length };
    };
    const handle = {
      writev: async (buffers: Buffer[], position?: number) =>
        take(Buffer.concat(buffers), position ?? null),
      write: async (
        buffer: Buffer,
        offset: number,
        length: number,
        position: number | null,
      ) => take(buffer.subarray(offset, offset + length), position),
    };
    return { handle: handle as unknown as FileHandle, written };
  }

  const cases: Array<[string, number | null]> = [
    ['from a position', 10],
    ['where the file stands', null],
  ];
  for (const [name, position] of cases) {
    it(`short writes ${name}: the rest is written on, at the right places`, async () => {
      const { handle, written } = shortWrites(3);
      await writeFully(
        handle,
        [Buffer.from('abcd'), Buffer.from('efgh')],
        position,
      );
      expect(written.map(w => w.bytes).join('')).to.equal('abcdefgh');
      expect(written.map(w => w.position)).to.deep.equal(
        position === null ? [null, null, null] : [10, 13, 16],
      );
    });
  }

  it('a write that makes no progress throws instead of looping', async () => {
    const { handle } = shortWrites(0);
    let failed: unknown;
    await writeFully(handle, [Buffer.from('x')]).catch(
      (err: unknown) => (failed = err),
    );
    expect((failed as Error).message).to.equal('write made no progress');
  });

  it('exists: a file yes, a missing one no, one under a missing folder no', async () => {
    await open(join(dir, 'there'), 'w').then(h => h.close());
    expect(await exists(join(dir, 'there'))).to.equal(true);
    expect(await exists(join(dir, 'gone'))).to.equal(false);
    expect(await exists(join(dir, 'no', 'such'))).to.equal(false);
  });

  it('fdWriter: writes through a plain descriptor, at a position or where the file stands', async () => {
    const path = join(dir, 'fd');
    const fd = openSync(path, 'w');
    try {
      await writeFully(fdWriter(fd), [Buffer.from('abc'), Buffer.from('def')]);
      await writeFully(fdWriter(fd), [Buffer.from('XY')], 1);
    } finally {
      closeSync(fd);
    }
    expect(await readFile(path, 'utf8')).to.equal('aXYdef');
  });

  it('writeFullySync: appends every byte; a full disk throws ENOSPC', async () => {
    const path = join(dir, 'log');
    const fd = openSync(path, 'a');
    try {
      writeFullySync(fd, Buffer.from('one\n'));
      writeFullySync(fd, Buffer.from('two\n'));
    } finally {
      closeSync(fd);
    }
    expect(await readFile(path, 'utf8')).to.equal('one\ntwo\n');
    const full = openSync('/dev/full', 'w');
    try {
      expect(() => writeFullySync(full, Buffer.from('x'))).to.throw(/ENOSPC/);
    } finally {
      closeSync(full);
    }
  });

  it('DirSyncer: a round that fails rejects, and the next round opens the folder again', async () => {
    const syncer = new DirSyncer();
    const folder = join(dir, 'claims');
    await mkdir(folder);
    await syncer.sync(folder);
    await rm(folder, { recursive: true });
    const failure = await syncer.sync(folder).catch((err: unknown) => err);
    expect((failure as NodeJS.ErrnoException).code).to.equal('ENOENT');
    await mkdir(folder);
    const descriptors = () => readdirSync('/proc/self/fd').length;
    const before = descriptors();
    // callers arriving together share one round, which a new descriptor serves
    expect(
      await Promise.all([syncer.sync(folder), syncer.sync(folder)]),
    ).to.deep.equal([undefined, undefined]);
    // and it is closed once no round follows
    expect(descriptors()).to.equal(before);
  });
});
