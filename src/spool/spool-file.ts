// The format of a spooled message file: one header line with the queue state at accept time,
// then the raw message exactly as received.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { BodyDigest, fingerprint } from '../mail/fingerprint.js';
import { HEADER_SNIFF_BYTES, headerBlock } from '../mail/header-block.js';
import { extractIds } from '../mail/message-id.js';
import { withoutPosition, type QueueEntry } from './queue-entry.js';

// the header block's reading is the mail layer's; spool callers find it here too
export { HEADER_SNIFF_BYTES, headerBlock };

/**
 * The first line of every file the spool writes. It is a header field, so even a tool that
 * reads the file as a plain message sees a valid (if long) header; JSON.stringify never writes
 * a raw CR or LF, so the value stays on one line.
 */
export const SPOOL_HEADER_NAME = 'X-Mailbridge-Queue';
const PREFIX = Buffer.from(`${SPOOL_HEADER_NAME}: `);

/** The header line for an entry: written in front of the raw bytes. */
export function spoolHeader(entry: QueueEntry): Buffer {
  return Buffer.from(
    `${PREFIX.toString()}${JSON.stringify(withoutPosition(entry))}\r\n`,
  );
}

/**
 * Reads the header line at the start of `head`: the entry it holds and the byte offset where
 * the raw message begins. Null when `head` does not start with one, or it is cut short.
 */
export function parseSpoolHeader(
  head: Buffer,
): { entry: QueueEntry; offset: number } | null {
  if (
    head.length < PREFIX.length ||
    !head.subarray(0, PREFIX.length).equals(PREFIX)
  ) {
    return null;
  }
  const end = head.indexOf('\n', PREFIX.length);
  if (end < 0) return null;
  try {
    const entry = JSON.parse(
      head.subarray(PREFIX.length, end).toString('utf8'),
    ) as QueueEntry;
    if (typeof entry?.id !== 'string' || !Array.isArray(entry.routes)) {
      return null;
    }
    return { entry, offset: end + 1 };
  } catch {
    return null;
  }
}

/**
 * The entry of a spooled file as it stands in its header, with the size and Message-ID of the
 * raw message filled in (neither is known when the header is written). Null when the file has
 * no (whole) header; throws ENOENT and other read errors.
 */
export async function readSpoolFile(path: string): Promise<QueueEntry | null> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    let head = Buffer.alloc(0);
    let parsed: ReturnType<typeof parseSpoolHeader> = null;
    // no cap on the line: it was whole when committed, and smtp.maxRecipients bounds it
    while (!parsed && head.length < size) {
      const more = Buffer.alloc(HEADER_SNIFF_BYTES);
      const { bytesRead } = await handle.read(
        more,
        0,
        more.length,
        head.length,
      );
      if (bytesRead === 0) break;
      head = Buffer.concat([head, more.subarray(0, bytesRead)]);
      parsed = parseSpoolHeader(head);
    }
    if (!parsed) return null;
    const { entry, offset } = parsed;
    let rest = head.subarray(offset);
    if (rest.length < HEADER_SNIFF_BYTES && offset + rest.length < size) {
      const more = Buffer.alloc(HEADER_SNIFF_BYTES - rest.length);
      const { bytesRead } = await handle.read(
        more,
        0,
        more.length,
        head.length,
      );
      rest = Buffer.concat([rest, more.subarray(0, bytesRead)]);
    }
    const headers = headerBlock(rest);
    const messageId = messageIdOf(headers);
    return {
      ...entry,
      size: size - offset,
      messageId: normalisedOrNull(messageId),
      fingerprint: fingerprint(
        headers,
        await bodyDigestOf(path, offset),
        messageId,
      ),
      rawOffset: offset,
    };
  } finally {
    await handle.close();
  }
}

/** The body digest of the message in `path` from byte `start` on, read as a stream. */
async function bodyDigestOf(path: string, start: number): Promise<string> {
  const digest = new BodyDigest();
  for await (const chunk of createReadStream(path, { start })) {
    digest.update(chunk as Buffer);
  }
  return digest.digest();
}

/** The Message-ID of a header block (the bytes before the first empty line), unfolded. */
export function findMessageId(start: Buffer): string | null {
  return messageIdOf(headerBlock(start));
}

/** The Message-ID of an unfolded header block (headerBlock), or null. */
export function messageIdOf(headers: string): string | null {
  const match = /^message-id[ \t]*:[ \t]*(.*)$/im.exec(headers);
  const value = match?.[1]?.trim();
  return value ? value : null;
}

/** A raw Message-ID header value, normalised as queue entries keep it; null without one. */
function normalisedOrNull(value: string | null): string | null {
  return extractIds(value ?? undefined)[0] ?? null;
}
