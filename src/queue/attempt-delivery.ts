// One delivery attempt of a spooled message: its pending routes through the one attempt step
// (pipeline/attempt-routes.ts), its fate from the one decision point (pipeline/decide.ts).
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import {
  decide,
  decideUnparsed,
  type AttemptResult,
} from '../pipeline/decide.js';
import { attemptRoutes } from '../pipeline/attempt-routes.js';
import type { SenderAuthenticator } from '../auth/sender-auth.js';
import type { DedupeRecords } from '../dedupe/dedupe-records.js';
import { exists } from '../lib/durable-fs.js';
import { pendingOf, type QueueEntry } from '../spool/queue-entry.js';
import type { PayloadSink } from '../pipeline/payload-sink.js';

export type { AttemptOutcome, AttemptResult } from '../pipeline/decide.js';

export interface AttemptDeps {
  config: Pick<Config, 'mapping' | 'delivery'>;
  sink: PayloadSink;
  dedupe: DedupeRecords;
  /** judges senders for the routes that ask (absent: no route's sender is judged) */
  senderAuth?: SenderAuthenticator;
  now: () => number;
  random: () => number;
  /**
   * Where the attachments are written while the attempt runs. By default the spool's tmp/ when
   * the raw message is a spool's `msg/<id>.eml` (recovery clears tmp/ after a crash), else
   * os.tmpdir().
   */
  attachmentDir?: string;
}

/** The spool's tmp/ folder for a raw message at `<spool>/msg/<id>.eml`. */
function spoolTmpDir(rawPath: string): string | undefined {
  const folder = dirname(rawPath);
  return basename(folder) === 'msg' ? join(dirname(folder), 'tmp') : undefined;
}

/**
 * Attempts every pending route of `entry`, whose raw message is at `rawPath` (from byte
 * `entry.rawOffset` on), or in `raw` when the caller still has its bytes (they may be handed
 * over to the post thread: the caller must not use them after). Never throws for a delivery
 * failure: the result says whether to remove, retry or bury the message.
 */
export async function attemptDelivery(
  entry: QueueEntry,
  rawPath: string,
  deps: AttemptDeps,
  raw?: Buffer,
): Promise<AttemptResult> {
  const startedAt = deps.now();
  const outcome = await attemptRoutes(
    {
      source: raw ?? rawPath,
      parse: {
        attachmentDir: deps.attachmentDir ?? spoolTmpDir(rawPath),
        start: raw ? undefined : entry.rawOffset,
        length: raw ? undefined : entry.rawLength,
      },
      envelope: entry.envelope,
      groups: pendingOf(entry),
      keys: entry,
      size: entry.size,
      auth: entry.auth,
    },
    {
      mapping: deps.config.mapping,
      sink: deps.sink,
      dedupe: deps.dedupe,
      senderAuth: deps.senderAuth,
    },
  );
  // the judgement made by this attempt is kept: later attempts, the log and `queue show` read
  // it; a temperror is not (the next attempt judges again, DNS may be back)
  if (outcome.auth) {
    entry =
      outcome.auth.verdict === 'temperror'
        ? { ...entry, auth: undefined }
        : { ...entry, auth: outcome.auth };
  }
  const context = {
    startedAt,
    now: deps.now(),
    retry: deps.config.delivery.retry,
    random: deps.random,
  };
  let result: AttemptResult;
  if (outcome.kind === 'unparsed') {
    // an ENOENT of the attachment folder is a disk matter: the raw file itself is checked
    const rawMissing = !raw && !(await exists(rawPath));
    result = decideUnparsed(
      entry,
      { error: outcome.error, rawMissing },
      context,
    );
  } else {
    result = decide(entry, outcome.routes, {
      ...context,
      messageId: outcome.messageId ?? entry.messageId ?? undefined,
    });
  }
  // the outcome line tells this attempt's judgement, the temperror included
  return outcome.auth ? { ...result, auth: outcome.auth } : result;
}
