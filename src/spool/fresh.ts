// Fresh messages from accepted to parked or removed, and this process's journal of them.
//
// Glossary (the crash orderings behind each step: docs/spool-internals.md):
// - fresh: accepted here, not yet in queue/: its bytes in a journal segment or a claim-folder file.
// - claim: owned by one process: its state or fresh file in that process's folder active[-n]/.
// - commit: making a received message durable as fresh (commitFresh, journalFresh): then 250.
// - park: fresh to spooled: raw bytes to msg/, then its state to queue/, dead/ or held/.
// - release: handing a message back to queue/ after an attempt that could not be filed.
// - adopt: renaming a fresh message's own file from a claim folder to msg/ as its raw file.
// - late: found done already by an earlier step whose caller never heard of it; left as is.
// - done: a journal record marked out of the journal (delivered, or parked durably).
import { renameSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../lib/durable-fs.js';
import { Journal } from './journal.js';
import {
  isNotFound,
  unlinkIfPresent,
  type ParkState,
  type SpoolLayout,
} from './layout.js';
import { withoutPosition, type QueueEntry } from './queue-entry.js';
import { parseSpoolHeader, spoolHeader } from './spool-file.js';
import { release } from './states.js';

/** This process's fresh messages: its journal, and the parkings it has not yet finished. */
export class FreshMessages {
  /** this process's journal of fresh small messages, opened with the first */
  private journal: Journal | undefined;
  /**
   * journaled messages whose parking renamed their state into queue/, dead/ or held/ but did
   * not finish (the folder fsync failed): releaseFresh finishes only that
   */
  private readonly parkedInto = new Map<string, ParkState>();
  /** false once stopAccepting() was called */
  private accepting = true;

  constructor(private readonly layout: SpoolLayout) {}

  /**
   * Makes a received message durable as a fresh one, claimed by this process: its file (header
   * line and raw bytes, already on disk) is renamed into the claim folder and the folder fsynced
   * (shared with the other commits of the moment). Only after this may the client hear 250.
   */
  async commitFresh(id: string, tmpPath: string): Promise<void> {
    if (!this.accepting) throw new Error('spool no longer accepting');
    const path = this.layout.freshPath(id);
    try {
      // synchronous: a metadata change, cheaper than a thread-pool round trip (durable-fs.ts)
      renameSync(tmpPath, path);
      await this.layout.dirSyncer.sync(
        join(this.layout.dir, this.layout.claimDir),
      );
    } catch (err) {
      await Promise.allSettled([
        rm(tmpPath, { force: true }),
        rm(path, { force: true }),
      ]);
      throw err;
    }
  }

  /**
   * Makes a received small message durable as a fresh one, claimed by this process: a record of
   * its journal (the header line for `entry`, then `raw`), on disk once this resolves. Only
   * after this may the client hear 250. Returns the entry with where its bytes lie.
   */
  async journalFresh(entry: QueueEntry, raw: Buffer): Promise<QueueEntry> {
    if (!this.accepting) throw new Error('spool no longer accepting');
    this.journal ??= new Journal(join(this.layout.dir, this.layout.claimDir));
    const header = spoolHeader(entry);
    const { offset } = await this.journal.append(entry.id, [header, raw]);
    return {
      ...entry,
      rawOffset: offset + header.length,
      rawLength: raw.length,
    };
  }

  /** The file a fresh message's bytes are in: a journal segment, or its own file. */
  rawPath(id: string): string {
    return this.journal?.position(id)?.path ?? this.layout.freshPath(id);
  }

  /**
   * Turns a fresh message into a spooled one in `to` (queue/, dead/ or held/) with the state
   * `entry`: raw bytes to msg/ and state to `to`, in an order a crash at any step leaves for
   * requeueClaims() to finish (docs/spool-internals.md, "Parking").
   */
  async park(entry: QueueEntry, to: ParkState, folder: string): Promise<void> {
    const { layout } = this;
    const claimed = join(layout.dir, folder, `${entry.id}.json`);
    if (folder === layout.claimDir && this.journal?.has(entry.id)) {
      const record = this.journal.read(entry.id)!;
      const parsed = parseSpoolHeader(record);
      if (!parsed) throw new Error(`journal record of ${entry.id} unreadable`);
      await layout.writeRaw(entry.id, record.subarray(parsed.offset));
      // the state on the claim first: if the move to `to` fails, releaseFresh hands it on
      await layout.writeState(claimed, withoutPosition(entry));
      await rename(claimed, layout.statePath(to, entry.id));
      await this.finishParking(entry.id, to);
      return;
    }
    // late: no journal record, parked already; no file of its own starts at rawOffset
    if (entry.rawLength !== undefined) return;
    await layout.writeState(claimed, entry);
    await this.adoptRaw(entry.id, folder);
    await rename(claimed, layout.statePath(to, entry.id));
  }

  /**
   * Hands a fresh message back after an attempt that could not be filed: parked in queue/ with
   * `entry` due at `at`, or, when a parking of that attempt got as far as writing its state
   * on the claim, that newer state is released to queue/ as it is ('released').
   */
  async releaseFresh(
    entry: QueueEntry,
    at: number,
  ): Promise<'parked' | 'released'> {
    const { layout } = this;
    const to = this.parkedInto.get(entry.id);
    if (to && this.journal?.has(entry.id)) {
      // only the failed folder fsync is done again, known from memory, not from the folder
      await this.finishParking(entry.id, to);
      return 'released';
    }
    if (await exists(join(layout.dir, layout.claimDir, `${entry.id}.json`))) {
      await this.adoptRaw(entry.id, layout.claimDir);
      await release(layout, entry.id);
      // a journaled one's raw bytes are in msg/ already: out of the journal now
      if (this.journal?.has(entry.id)) {
        await this.finishParking(entry.id, 'queue');
      }
      return 'released';
    }
    await this.park({ ...entry, nextAttemptAt: at }, 'queue', layout.claimDir);
    return 'parked';
  }

  /**
   * The end of a journaled message's parking, once its state is renamed into `to`: that folder
   * fsynced, then its record marked done. Remembered until then (parkedInto), so that a failed
   * fsync is all releaseFresh does again.
   */
  private async finishParking(id: string, to: ParkState): Promise<void> {
    this.parkedInto.set(id, to);
    await this.layout.dirSyncer.sync(join(this.layout.dir, to));
    this.journal?.done(id);
    this.parkedInto.delete(id);
  }

  /** Adopts a fresh message's file from a claim folder into msg/ (late: moved already). */
  async adoptRaw(id: string, folder: string): Promise<void> {
    try {
      await rename(
        this.layout.freshPath(id, folder),
        this.layout.messagePath(id),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Removes a fresh message for good (delivered, or refused while its sender waited): its
   * journal record is marked done, or its file deleted.
   */
  async remove(id: string): Promise<void> {
    if (this.journal?.has(id)) {
      this.journal.done(id);
      return;
    }
    await unlinkIfPresent(this.layout.freshPath(id));
  }

  /** Fresh messages of this process in its journal. */
  get journaled(): number {
    return this.journal?.size ?? 0;
  }

  /** Whether a segment file is this process's own journal's (never touched by recovery). */
  ownsSegment(path: string): boolean {
    return this.journal?.owns(path) ?? false;
  }

  /** Refuses fresh messages from here on; what is held is still delivered and marked done. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Refuses fresh messages and closes the journal's files: its rest is parked at next start. */
  close(): void {
    this.accepting = false;
    this.journal?.close();
  }
}
