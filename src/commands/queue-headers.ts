// The header summary `queue show` prints: the header block read from the spooled raw file
// (past mailbridge's own first line), unfolded, encoded words decoded.
import { open, type FileHandle } from 'node:fs/promises';
import type { QueueEntry } from '../spool/queue-entry.js';
import { parseSpoolHeader } from '../spool/spool-file.js';

/** The headers shown, in this order. */
export const SUMMARY_HEADERS = [
  'From',
  'Reply-To',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
];

/** Only this much of a raw message is read for its headers. */
const HEAD_BYTES = 64 * 1024;

/**
 * The first bytes of an entry's raw message in `path`: past the X-Mailbridge-Queue line of a
 * spool file, or from the entry's offset in a journal segment.
 */
export async function readRawHead(
  path: string,
  entry: QueueEntry,
): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    if (!path.endsWith('.eml')) {
      // a journal segment: the record's bytes, from where the entry says they start
      const length = Math.min(HEAD_BYTES, entry.rawLength ?? HEAD_BYTES);
      return await readAt(handle, entry.rawOffset ?? 0, length);
    }
    // a file of its own: the X-Mailbridge-Queue line (when there is one), then the message
    const head = await readAt(handle, 0, 2 * HEAD_BYTES);
    const start = parseSpoolHeader(head)?.offset ?? 0;
    return head.subarray(start, start + HEAD_BYTES);
  } finally {
    await handle.close();
  }
}

async function readAt(
  handle: FileHandle,
  position: number,
  length: number,
): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/** The summary headers found in a head, decoded, each `[name, value]`, in SUMMARY_HEADERS order. */
export function headerSummary(head: Buffer): Array<[string, string]> {
  const text = head.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const block = end < 0 ? text : text.slice(0, end);
  const fields = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!fields.has(name)) fields.set(name, line.slice(colon + 1).trim());
  }
  const out: Array<[string, string]> = [];
  for (const name of SUMMARY_HEADERS) {
    const value = fields.get(name.toLowerCase());
    if (value !== undefined) out.push([name, decodeWords(toUtf8(value))]);
  }
  return out;
}

/** Header bytes read as latin1, taken back as UTF-8 when they are valid UTF-8 (raw 8-bit headers). */
function toUtf8(latin1: string): string {
  const bytes = Buffer.from(latin1, 'latin1');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return latin1;
  }
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

/** RFC 2047 encoded words decoded (whitespace between two of them dropped); unknown charsets kept. */
export function decodeWords(value: string): string {
  const joined = value.replace(/(\?=)\s+(?==\?)/g, '$1');
  return joined.replace(
    ENCODED_WORD,
    (word, charset: string, encoding: string, text: string) => {
      const bytes =
        encoding.toUpperCase() === 'B'
          ? Buffer.from(text, 'base64')
          : Buffer.from(
              text
                .replace(/_/g, ' ')
                .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) =>
                  String.fromCharCode(parseInt(hex, 16)),
                ),
              'latin1',
            );
      try {
        return new TextDecoder(charset.replace(/\*.*$/, '')).decode(bytes);
      } catch {
        return word; // a charset Node does not know: shown as it is
      }
    },
  );
}
