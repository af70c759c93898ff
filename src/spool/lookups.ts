// Read-only lookups across every process's claim folders, from the disk alone (the accepting
// process may be running): fresh messages in journal segments, and where a raw message lies.
import { exists } from '../lib/durable-fs.js';
import { readSegment } from './journal-format.js';
import type { SpoolLayout } from './layout.js';
import type { QueueEntry } from './queue-entry.js';
import { parseSpoolHeader } from './spool-file.js';

/** A journaled fresh message: its entry (with where its raw bytes lie) and its segment. */
export interface Journaled {
  entry: QueueEntry;
  path: string;
}

/**
 * Every fresh message in the journal segments of `folders`, read in one pass: its entry (with
 * where its raw bytes lie in the segment) and the segment.
 */
export async function journaledEntries(
  layout: SpoolLayout,
  folders: string[],
): Promise<Map<string, Journaled>> {
  const found = new Map<string, Journaled>();
  for (const folder of folders) {
    for (const path of await layout.segments(folder)) {
      const { records } = await readSegment(path).catch(() => ({
        records: [],
      }));
      for (const { id, offset, content } of records) {
        const parsed = parseSpoolHeader(content);
        if (parsed?.entry.id !== id) continue;
        const entry = {
          ...parsed.entry,
          rawOffset: offset + parsed.offset,
          rawLength: content.length - parsed.offset,
        };
        found.set(id, { entry, path });
      }
    }
  }
  return found;
}

/** A fresh message of any claim folder's journal, by id, with the segment it is in. */
export async function findJournaled(
  layout: SpoolLayout,
  id: string,
  folders: string[],
): Promise<Journaled | null> {
  return (await journaledEntries(layout, folders)).get(id) ?? null;
}

/**
 * The file holding an entry's raw message: msg/, or for a fresh one its file in a claim folder
 * or the journal segment its record is in.
 */
export async function locateRaw(
  layout: SpoolLayout,
  id: string,
): Promise<string | null> {
  const folders = await layout.claimFolders();
  const candidates = [
    layout.messagePath(id),
    ...folders.map(f => layout.freshPath(id, f)),
  ];
  for (const path of candidates) {
    if (await exists(path)) return path;
  }
  return (await findJournaled(layout, id, folders))?.path ?? null;
}
