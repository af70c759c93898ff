// The attachment files of one parsed message: written one by one, removed together.
import { randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PRIVATE_FILE, writeFully } from '../lib/durable-fs.js';

/** The attachment files of one message: written one by one, removed together. */
export class AttachmentFiles {
  private readonly paths: string[] = [];

  constructor(
    private readonly dir?: string,
    /** how names begin; random digits are added with the first attachment (most have none) */
    private readonly namePrefix = 'att-',
  ) {}

  private prefix?: string;
  /** files written so far: each file's number (a dropped attachment's number is not reused) */
  private written = 0;

  /**
   * Writes one attachment's content to a new file, numbered in the order written (1, 2, ...).
   * An error of the file (opening, writing) is returned; an error of the content (bad encoding,
   * a failed parser) is thrown.
   */
  async store(
    content: Readable,
  ): Promise<{ path: string; size: number } | { error: Error }> {
    this.prefix ??= `${this.namePrefix}${randomBytes(8).toString('hex')}`;
    const path = join(
      this.dir ?? tmpdir(),
      `${this.prefix}-${++this.written}.bin`,
    );
    this.paths.push(path);
    let file: FileHandle;
    try {
      // decoded attachments are mail at rest (under the spool's tmp/): owner-only
      file = await open(path, 'wx', PRIVATE_FILE);
    } catch (err) {
      return { error: err as Error };
    }
    let size = 0;
    try {
      for await (const chunk of content as AsyncIterable<Buffer>) {
        try {
          await writeFully(file, [chunk]);
        } catch (err) {
          return { error: err as Error };
        }
        size += chunk.length;
      }
    } finally {
      // leaving the loop early (an error, a return) has destroyed the content stream
      await file.close();
    }
    return { path, size };
  }

  /** Removes every file written so far; never rejects. */
  async dispose(): Promise<void> {
    const paths = this.paths.splice(0);
    await Promise.all(
      paths.map(path => rm(path, { force: true }).catch(() => undefined)),
    );
  }
}
