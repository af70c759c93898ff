// A message's header block: where it ends, its bytes read once from memory or from the start of
// a file, and its text unfolded. Route policies (noise) and sender authentication (the signature
// count) read the same bytes, once per attempt.
import { open } from 'node:fs/promises';

/** The raw message: its bytes, or the file holding them (from `start`, `length` bytes). */
export type RawMessage =
  Buffer | { path: string; start?: number; length?: number };

/** Only this much of the start of a message is unfolded and searched for its fields. */
export const HEADER_SNIFF_BYTES = 64 * 1024;

/**
 * The longest header block read as bytes (the structure check refuses a longer one at DATA:
 * smtp-server's and mailparser's own limit).
 */
export const HEADER_READ_LIMIT = 1024 * 1024;

/** The header block of a message's start (the bytes before the first empty line), unfolded. */
export function headerBlock(start: Buffer): string {
  const head = start.subarray(0, HEADER_SNIFF_BYTES);
  // the header block ends at the first empty line, which may be the very first line; only
  // the header block is decoded (a body of 64 KiB would be copied for nothing)
  return head
    .subarray(0, headerEnd(head))
    .toString('latin1')
    .replace(/\r?\n[ \t]+/g, ' ');
}

/** The bytes of `raw`'s header block, up to HEADER_READ_LIMIT of them. */
export async function readHeaderBytes(raw: RawMessage): Promise<Buffer> {
  if (Buffer.isBuffer(raw)) return headerBytes(raw);
  const handle = await open(raw.path, 'r');
  try {
    const limit = Math.min(raw.length ?? HEADER_READ_LIMIT, HEADER_READ_LIMIT);
    // a header block is a few KiB: 64 KiB are read, and more only when its end is not in them
    for (let size = Math.min(limit, HEADER_SNIFF_BYTES); ;) {
      const buffer = Buffer.allocUnsafe(size);
      const { bytesRead } = await handle.read(buffer, 0, size, raw.start ?? 0);
      const head = buffer.subarray(0, bytesRead);
      const end = headerEnd(head);
      if (end < head.length || bytesRead < size || size >= limit) {
        return head.subarray(0, end);
      }
      size = Math.min(limit, size * 4);
    }
  } finally {
    await handle.close();
  }
}

/** The header block of `start` as bytes (at most HEADER_READ_LIMIT), without its empty line. */
export function headerBytes(start: Buffer): Buffer {
  const head = start.subarray(0, HEADER_READ_LIMIT);
  return head.subarray(0, headerEnd(head));
}

/** Where the header block of `head` ends (before its empty line), or its length. */
function headerEnd(head: Buffer): number {
  if (head[0] === 0x0a || (head[0] === 0x0d && head[1] === 0x0a)) return 0;
  for (let from = 0; ;) {
    const lf = head.indexOf(0x0a, from);
    if (lf < 0 || lf + 1 >= head.length) return head.length;
    const next = head[lf + 1];
    if (next === 0x0a) return head[lf - 1] === 0x0d ? lf - 1 : lf;
    if (next === 0x0d && head[lf + 2] === 0x0a) {
      return head[lf - 1] === 0x0d ? lf - 1 : lf;
    }
    from = lf + 1;
  }
}

/** The unfolded header block of `raw` (headerBlock), from its bytes or the start of its file. */
export async function readHeaderBlock(raw: RawMessage): Promise<string> {
  return headerBlock(await readHeaderBytes(raw));
}
