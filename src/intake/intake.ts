// The port between a protocol's listener and the delivery mode: the Intake interface and its types.
import type { Envelope } from '../mail/envelope.js';
import type { SmtpReplyError } from '../errors/to-smtp-reply.js';
import type { SenderAuth } from '../auth/verdict.js';
import type { QueueEntry } from '../spool/queue-entry.js';

/**
 * A message as received (smtp/receive-to-file.ts's ReceivedFile is one): in a file at `path`
 * when `stored`, else its bytes kept in `raw` (a small one, outside sync mode).
 */
export interface Received {
  path: string;
  stored: boolean;
  size: number;
  /** the raw Message-ID header value, if the header block has one */
  messageId: string | null;
  /** what dedupe records match on (mail/fingerprint.ts) */
  fingerprint: string;
  /** bytes written in front of the message (the spool header line), 0 without one */
  offset: number;
  raw?: Buffer;
  /** the sender's judgement, when made at the end of DATA (a route enforces) */
  auth?: SenderAuth;
}

/** The 250 text and what the outcome line of the log says. */
export interface Accepted {
  reply: string;
  outcome: 'delivered' | 'dry-run' | 'queued' | 'held' | 'dropped' | 'partial';
  messageId: string | null;
  /** sync mode: the sender's judgement the attempt used, for the outcome line */
  auth?: SenderAuth;
  /**
   * Sync mode: the routes whose policy dropped the message (nothing posted for them), and
   * why (`route N: reason`, joined with '; '), for the outcome line and the metric.
   */
  dropped?: { routes: number; reason: string };
  /**
   * LMTP (sync or hybrid mode), when the routes fared differently: one reply per
   * recipient, in RCPT order (the reply text, or the refusal), and the failures.
   */
  perRecipient?: {
    replies: Array<string | SmtpReplyError>;
    failures: unknown[];
    /** routes that took the message (or had it already) */
    delivered: number;
  };
}

/**
 * What the listener may ask of delivery, in any mode (sync | queue | hybrid): built once by the
 * daemon (intake/accept.ts createIntake). The listener never sees the queue runner.
 */
export interface Intake {
  /** Where a message is written while it arrives (the spool's tmp/). */
  tmpPath(id: string): string;
  /**
   * Queue and hybrid modes: the state a message is spooled with, before its bytes arrive (its
   * header line goes in front of them, see spool-file.ts). Undefined in sync mode.
   */
  newEntry(envelope: Envelope): QueueEntry | undefined;
  /**
   * Hands a received message to the delivery mode (`initial`: from newEntry). Resolves with the
   * 250 text and outcome, or per-recipient replies (LMTP); a refusal or failure is thrown (a
   * BridgeError, or a bug) for the listener's one catch to answer.
   */
  accept(
    received: Received,
    envelope: Envelope,
    initial: QueueEntry | undefined,
  ): Promise<Accepted>;
  /**
   * Flow control for a new transaction: undefined when there is room (or `maxMs` is 0),
   * otherwise resolves once it may go on, after `maxMs` at most (see IntakeBuffer.waitForRoom).
   */
  waitForRoom(maxMs: number): Promise<void> | undefined;
  /** Fresh messages waiting for their first attempt (0 in sync mode). */
  readonly waiting: number;
}
