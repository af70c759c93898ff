// LMTP's replies after the message: one per accepted RCPT command (RFC 2033 4.2).
import { TemporaryError } from '../errors/bridge-error.js';
import { toSmtpReply } from '../errors/to-smtp-reply.js';

export type Reply = string | Error;

/**
 * One reply per accepted RCPT command, in their order. `result` is the message's reply for
 * every recipient, or one per envelope recipient (in `envelope` order). smtp-server keeps a
 * recipient given twice once in the envelope (whatever its case), so each command's recipient
 * is found again by address, case aside. One not found (never expected) is told to retry, never
 * told 250.
 */
export function lmtpReplies(
  result: Reply | Reply[],
  commands: readonly string[],
  envelope: readonly string[],
): Reply[] {
  if (!Array.isArray(result)) return commands.map(() => result);
  const byAddress = new Map<string, Reply>();
  envelope.forEach((address, i) => {
    const reply = result[i];
    if (reply !== undefined) byAddress.set(address.toLowerCase(), reply);
  });
  return commands.map(
    address =>
      byAddress.get(address.toLowerCase()) ??
      toSmtpReply(new TemporaryError('Temporary failure, try again later')),
  );
}
