// LMTP: the RCPT commands of each session's transaction, for one reply per accepted RCPT.
import type { SMTPServerSession } from 'smtp-server';
import { lmtpReplies, type Reply } from './lmtp-replies.js';

/**
 * LMTP: the recipients of each session's transaction as its RCPT commands gave them, once per
 * accepted command. smtp-server merges a recipient given twice into one envelope entry, but
 * the client awaits one reply per accepted RCPT (RFC 2033 4.2).
 */
export class RcptCommands {
  private readonly bySession = new WeakMap<SMTPServerSession, string[]>();

  /** A new transaction (MAIL FROM): its RCPT commands are counted from here. */
  begin(session: SMTPServerSession): void {
    this.bySession.set(session, []);
  }

  /** An RCPT command the server accepted. */
  add(session: SMTPServerSession, address: string): void {
    this.bySession.get(session)?.push(address);
  }

  /** One reply per accepted RCPT of the session's transaction (see lmtpReplies). */
  replies(result: Reply | Reply[], session: SMTPServerSession): Reply[] {
    const envelope = session.envelope.rcptTo.map(r => r.address);
    return lmtpReplies(
      result,
      this.bySession.get(session) ?? envelope,
      envelope,
    );
  }
}
