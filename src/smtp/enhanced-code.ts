// A reply text that carries its own enhanced status code (RFC 3463) keeps it. smtp-server puts a
// code of its own in front of every reply to a handler's error (550 gets 5.1.1, "bad
// destination mailbox"), so `550` with `5.7.1 Sender authentication failed` went out as
// `550 5.1.1 5.7.1 Sender ...`. Pure: the send context smtp-server should use.

/** An enhanced status code at the start of a reply text: class, subject, detail. */
const ENHANCED = /^([245])\.\d{1,3}\.\d{1,3} /;

/**
 * The context to send `code` `data` with: `false` (no code added) when the text starts with an
 * enhanced status code of the reply's own class, else `context` as it was.
 */
export function enhancedContext(
  code: number,
  data: string | string[] | null | undefined,
  context: string | false | undefined,
): string | false | undefined {
  if (typeof data !== 'string') return context;
  const own = ENHANCED.exec(data);
  return own && own[1] === String(code)[0] ? false : context;
}
