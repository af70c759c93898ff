// Inline images: which attachment an <img> of the HTML names (cid: or Content-Location), and the
// data: URL of each one small enough to be shown in the content.
import { readFile } from 'node:fs/promises';
import type { ParsedAttachment } from './parsed-message.js';

/** The largest image (decoded bytes) shown in the content as a data: URL; a larger one is named. */
export const INLINE_IMAGE_MAX_BYTES = 256 * 1024;

/** The most image bytes (decoded) one message shows as data: URLs; the images past it are named. */
export const INLINE_IMAGES_MAX_BYTES = 2 * 1024 * 1024;

/**
 * The image types shown as data: URLs: the raster formats every browser shows. SVG is left out
 * (a document, not a picture); an image of another type is named instead.
 */
export const SHOWN_IMAGE_TYPES: ReadonlySet<string> = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/bmp',
]);

/** An <img> tag; attribute values may hold `>` when quoted. */
export const IMG_TAG = /<img\b(?:[^>"']|"[^"]*"|'[^']*')*>/gi;

/** The src attribute of an <img> tag: its value in group 1, 2 or 3 (double, single, bare). */
export const SRC_ATTRIBUTE =
  /(\ssrc\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i;

/** The src of an <img> tag as written (entities in it decoded: `&amp;` is `&`), if any. */
export function imageSource(tag: string): string | undefined {
  const match = SRC_ATTRIBUTE.exec(tag);
  if (!match) return undefined;
  const value = match[2] ?? match[3] ?? match[4] ?? '';
  return decodeEntities(value).trim();
}

/** The few entities an attribute value is likely to carry, decoded. */
export function decodeEntities(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) =>
      String.fromCodePoint(parseInt(hex, 16)),
    )
    .replace(/&#(\d+);/g, (_, dec: string) =>
      String.fromCodePoint(parseInt(dec, 10)),
    )
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** A cid: URL's content id (RFC 2392: URL-encoded, no angle brackets), or undefined. */
export function cidOf(src: string): string | undefined {
  const match = /^\s*cid:(.*)$/is.exec(src);
  if (!match) return undefined;
  let id = match[1]!;
  try {
    id = decodeURIComponent(id);
  } catch {
    // a stray % is kept as written
  }
  return id.trim().replace(/^<|>$/g, '').trim();
}

/**
 * The attachment an image source names: by Content-ID for a `cid:` URL (case-insensitive),
 * else by Content-Location (MHTML), compared as written.
 */
export function referencedAttachment(
  src: string,
  attachments: readonly ParsedAttachment[],
): ParsedAttachment | undefined {
  const cid = cidOf(src);
  if (cid !== undefined) {
    const wanted = cid.toLowerCase();
    return attachments.find(a => a.contentId?.toLowerCase() === wanted);
  }
  if (!src) return undefined;
  return attachments.find(a => a.contentLocation === src);
}

/**
 * The attachments the HTML's images name, each once, in the order the HTML first names them.
 */
export function referencedImages(
  html: string,
  attachments: readonly ParsedAttachment[],
): ParsedAttachment[] {
  const found = new Set<ParsedAttachment>();
  for (const [tag] of html.matchAll(IMG_TAG)) {
    const src = imageSource(tag);
    const attachment = src && referencedAttachment(src, attachments);
    if (attachment) found.add(attachment);
  }
  return [...found];
}

/**
 * Which of the images are shown (the rest are named): a shown type, each within
 * INLINE_IMAGE_MAX_BYTES, in order until INLINE_IMAGES_MAX_BYTES would be passed.
 */
export function imagesToShow(
  images: readonly ParsedAttachment[],
  budget = { perImage: INLINE_IMAGE_MAX_BYTES, total: INLINE_IMAGES_MAX_BYTES },
): ParsedAttachment[] {
  const shown: ParsedAttachment[] = [];
  let left = budget.total;
  for (const image of images) {
    if (!SHOWN_IMAGE_TYPES.has(image.contentType)) continue;
    if (image.size === 0 || image.size > budget.perImage) continue;
    if (image.size > left) continue;
    left -= image.size;
    shown.push(image);
  }
  return shown;
}

/**
 * Gives each image the HTML shows, within the budget, its data: URL (`dataUrl`), read from its
 * file: at most INLINE_IMAGES_MAX_BYTES are read, whatever the message.
 */
export async function embedInlineImages(
  html: string,
  attachments: readonly ParsedAttachment[],
): Promise<void> {
  for (const image of imagesToShow(referencedImages(html, attachments))) {
    const bytes = await readFile(image.path);
    image.dataUrl = `data:${image.contentType};base64,${bytes.toString('base64')}`;
  }
}
