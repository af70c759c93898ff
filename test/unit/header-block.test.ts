// A message's header block read from a file (mail/header-block.ts): the first 64 KiB, and more
// only when the block's end is not in them, up to 1 MiB; the same bytes as from memory.
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HEADER_READ_LIMIT,
  headerBytes,
  readHeaderBytes,
} from '../../src/mail/header-block.js';

const KIB = 1024;

/** A header block of about `size` bytes (folded X- fields), with a body unless `body` is null. */
function message(size: number, body: string | null = 'Hello.\r\n'): Buffer {
  const field = `X-Filler: ${'f'.repeat(990)}\r\n`;
  const head = `From: a@example.net\r\n${field.repeat(Math.ceil(size / field.length))}`;
  return Buffer.from(body === null ? head : `${head}\r\n${body}`);
}

describe('the header block read from a file', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'mb-head-'))));
  after(async () => await rm(dir, { recursive: true, force: true }));

  const cases: Array<[name: string, bytes: Buffer, length: number]> = [
    ['a small block', message(2 * KIB), -1],
    ['a block ending past 64 KiB', message(100 * KIB), -1],
    ['a block ending past 256 KiB', message(300 * KIB), -1],
    ['no empty line: the whole file', message(10 * KIB, null), -1],
    [
      'no empty line within 1 MiB: 1 MiB of it',
      message(1100 * KIB, null),
      HEADER_READ_LIMIT,
    ],
    ['an empty header block', Buffer.from('\r\nbody\r\n'), 0],
  ];
  for (const [name, bytes, length] of cases) {
    it(name, async () => {
      const path = join(dir, `${name}.eml`);
      // behind a spool header line, as spool files keep it
      const prefix = Buffer.from('X-Mailbridge-Queue: {}\r\n');
      await writeFile(path, Buffer.concat([prefix, bytes]));
      const read = await readHeaderBytes({ path, start: prefix.length });
      expect(read.equals(headerBytes(bytes))).to.equal(true);
      if (length >= 0) expect(read.length).to.equal(length);
      else {
        expect(read.toString('latin1')).to.match(/^From: a@example\.net\r\n/);
      }
    });
  }
});
