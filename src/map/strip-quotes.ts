// A route's stripQuotedReplies: the bodies of a reply without its quoted history.
import type { RouteConfig } from '../config/schema.js';
import type { ParsedMessage } from '../parse/parsed-message.js';
import { isStrippableReply } from './reply-kind.js';
import { stripHtmlQuotes } from './strip-html-quotes.js';
import { stripTextQuotes } from './strip-text-quotes.js';

/** What `content` is made of: the bodies, and the attachments their inline images point at. */
export type Bodies = Pick<ParsedMessage, 'text' | 'html' | 'attachments'>;

/**
 * The text and HTML parts to map: as they came, or, for a route with stripQuotedReplies and a
 * message that is a reply (reply-kind.ts), each without its quoted history. An HTML part over
 * `maxHtmlBytes` is left as it is (it is never parsed as HTML: to-api-payload.ts shows its
 * text part instead, stripped here).
 */
export function bodiesToMap(
  message: ParsedMessage,
  route: Pick<RouteConfig, 'stripQuotedReplies'>,
  maxHtmlBytes: number,
): Bodies {
  const { text, html, attachments } = message;
  if (!route.stripQuotedReplies || !isStrippableReply(message)) {
    return { text, html, attachments };
  }
  return {
    attachments,
    text: text && stripTextQuotes(text),
    html: html && html.length <= maxHtmlBytes ? stripHtmlQuotes(html) : html,
  };
}
