// Queue ids: the sortable, unique name of an accepted message (spool file names, journal, logs).
import { randomBytes } from 'node:crypto';

/** Random bytes drawn 4 KiB at a time: one call into the crypto library per 819 ids. */
const randomPool = { bytes: Buffer.alloc(0), used: 0 };

function randomHex(count: number): string {
  if (randomPool.used + count > randomPool.bytes.length) {
    randomPool.bytes = randomBytes(4096);
    randomPool.used = 0;
  }
  const start = randomPool.used;
  randomPool.used += count;
  return randomPool.bytes.toString('hex', start, start + count);
}

/** A sortable, unique id for an accepted message: time in base 36, then randomness. */
export function newQueueId(now = Date.now()): string {
  return `${now.toString(36)}${randomHex(5)}`.toUpperCase();
}
