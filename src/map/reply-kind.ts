// Whether a message is a reply whose quoted history may be cut (a route's stripQuotedReplies).
import type { ParsedMessage } from '../parse/parsed-message.js';
import {
  FORWARD_PREFIXES,
  REPLY_PREFIXES,
  subjectPrefixes,
} from './quote-patterns.js';

/**
 * A reply: it names what it answers (In-Reply-To or References) or its subject says so
 * ("Re:", "AW:", "Sv:", ...). Never a forward: a subject whose latest prefix is a forward's
 * ("Fwd: Re: x", "WG:", "I:") keeps everything, since the forwarded message is the news for
 * whoever reads it (Gmail's forwards carry In-Reply-To and References). A forwarded-message
 * line above the first quote stops the cut too (strip-text-quotes.ts, strip-html-quotes.ts).
 */
export function isStrippableReply(
  message: Pick<ParsedMessage, 'subject' | 'inReplyTo' | 'references'>,
): boolean {
  const latest = subjectPrefixes(message.subject ?? '')[0];
  if (latest !== undefined && FORWARD_PREFIXES.has(latest)) return false;
  const answers =
    Boolean(message.inReplyTo?.trim()) || message.references.length > 0;
  return answers || (latest !== undefined && REPLY_PREFIXES.has(latest));
}
