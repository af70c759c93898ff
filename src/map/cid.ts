// PURE: the HTML's inline images resolved: no `cid:` (or MHTML Content-Location) left dangling.
import {
  IMG_TAG,
  SRC_ATTRIBUTE,
  cidOf,
  decodeEntities,
  imageSource,
  referencedAttachment,
} from '../parse/inline-images.js';
import type { ParsedAttachment } from '../parse/parsed-message.js';

/**
 * Each <img> that names a part of the message: shown from its data: URL when it has one (the
 * inline-image budget of parse/inline-images.ts), else replaced by `[image: NAME]`, the name of
 * the attachment it still is. An image whose `cid:` names no part becomes `[image: ALT]` (or
 * `[image]`). Other images are left to the sanitizer (mapping.remoteImages).
 */
export function resolveInlineImages(
  html: string,
  attachments: readonly ParsedAttachment[],
): string {
  return html.replace(IMG_TAG, tag => {
    const src = imageSource(tag);
    if (src === undefined) return tag;
    const attachment = referencedAttachment(src, attachments);
    if (attachment?.dataUrl) {
      return tag.replace(SRC_ATTRIBUTE, `$1"${attachment.dataUrl}"`);
    }
    if (attachment) return placeholder(attachment.filename);
    if (cidOf(src) !== undefined) return placeholder(altOf(tag));
    return tag;
  });
}

/** `[image: NAME]` as HTML text (`[image]` without a name). */
export function placeholder(name: string | undefined): string {
  const shown = name?.replace(/\s+/g, ' ').trim();
  return escapeHtml(shown ? `[image: ${shown}]` : '[image]');
}

/** The alt text of an <img> tag, as written. */
function altOf(tag: string): string | undefined {
  const match = /\salt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i.exec(tag);
  return match
    ? decodeEntities(match[1] ?? match[2] ?? match[3] ?? '')
    : undefined;
}

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}
