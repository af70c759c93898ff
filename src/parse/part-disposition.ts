// PURE: where mailparser's reading of a text part's disposition is corrected.

/** What the MIME splitter knows of a part when its headers are read. */
export interface PartHeaders {
  /** the message's own header block (not a part of a multipart) */
  root?: boolean;
  contentType?: string | false;
  /** Content-Disposition's value, decoded, lower case; false when there is none */
  disposition?: string | false;
  /** Content-Disposition's filename, else Content-Type's name; false when neither */
  filename?: string | false;
}

const BODY_TYPES = new Set(['text/plain', 'text/html']);

/**
 * The disposition a text part really has, where mailparser's differs; undefined to keep its own.
 * - The message's own single text part is its body, whatever a broken Content-Disposition says
 *   (mailparser makes an unknown value `attachment`, and the body a file).
 * - A text part of a multipart named by Content-Type's `name` but with no Content-Disposition is
 *   a file (a client that forgot the header), not more body text.
 */
export function correctedDisposition(
  part: PartHeaders,
): 'inline' | 'attachment' | undefined {
  if (!part.contentType || !BODY_TYPES.has(part.contentType)) return undefined;
  const known =
    part.disposition === 'inline' || part.disposition === 'attachment';
  if (part.root && part.disposition && !known) return 'inline';
  if (!part.root && !part.disposition && part.filename) return 'attachment';
  return undefined;
}
