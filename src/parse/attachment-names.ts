// Attachment file names: a sender's name made safe, or one made up from the content type.

/** File extensions for generated attachment names; anything else gets `.bin`. */
export const EXTENSIONS: Record<string, string> = {
  'application/pdf': 'pdf',
  'application/zip': 'zip',
  'application/json': 'json',
  'application/xml': 'xml',
  'application/ms-tnef': 'dat',
  'application/pgp-signature': 'asc',
  'application/pgp-encrypted': 'asc',
  'application/pkcs7-signature': 'p7s',
  'application/x-pkcs7-signature': 'p7s',
  'application/pkcs7-mime': 'p7m',
  'application/x-pkcs7-mime': 'p7m',
  'application/msword': 'doc',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document':
    'docx',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'image/svg+xml': 'svg',
  'image/bmp': 'bmp',
  'image/tiff': 'tif',
  'text/plain': 'txt',
  'text/html': 'html',
  'text/calendar': 'ics',
  'text/csv': 'csv',
  'text/rfc822-headers': 'txt',
  'message/rfc822': 'eml',
  'message/global': 'eml',
  'message/news': 'eml',
  'message/delivery-status': 'txt',
  'message/disposition-notification': 'txt',
  'message/global-delivery-status': 'txt',
  'message/global-disposition-notification': 'txt',
  'message/global-headers': 'txt',
  'message/feedback-report': 'txt',
  'audio/mpeg': 'mp3',
  'video/mp4': 'mp4',
};

/**
 * The longest name kept, in bytes of UTF-8: 255 is the most a file name may have on the common
 * file systems (ext4, XFS, APFS; NTFS counts 255 UTF-16 units, never fewer), so a name posted
 * can be saved as it is wherever the helpdesk or the agent stores it.
 */
export const MAX_FILENAME_BYTES = 255;

/** The longest extension kept when a name is shortened; a longer "extension" is just text. */
const MAX_EXTENSION_BYTES = 32;

/**
 * Control characters (C0, DEL, C1) and the bidi formatting characters (LRM, RLM, ALM, the
 * embeddings and overrides LRE..RLO, the isolates LRI..PDI): an override makes
 * `invoice\u202Egpj.exe` show as `invoiceexe.jpg`.
 */
const UNSAFE =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what we strip
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const byteLength = (text: string) => Buffer.byteLength(text, 'utf8');
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * A sender's file name made safe: the last path segment, without control and bidi characters,
 * shortened to MAX_FILENAME_BYTES with its extension kept. Null when nothing is left.
 */
export function safeFilename(name: string | null | undefined): string | null {
  if (!name) return null;
  const base = name.replace(UNSAFE, '').split(/[\\/]/).pop()?.trim();
  return base && base !== '.' && base !== '..' ? capLength(base) || null : null;
}

/**
 * An attachment's name: its decoded filename, else the last segment of its Content-Location
 * (given the extension of its type when it has none), else `attachment-N.ext`.
 */
export function attachmentName(part: {
  filename?: string | null;
  contentLocation?: string;
  contentType: string;
  /** the attachment's position in the message, from 0 */
  index: number;
}): string {
  return (
    givenName(part) ??
    `attachment-${part.index + 1}.${EXTENSIONS[part.contentType] ?? 'bin'}`
  );
}

/**
 * The name a part was given (its filename, else its Content-Location's), or null. A name with
 * no extension gets its type's (`Portion de message joint` of a text/calendar part is
 * `Portion de message joint.ics`): the agent's machine opens a file by its extension.
 */
export function givenName(part: {
  filename?: string | null;
  contentLocation?: string;
  contentType: string;
}): string | null {
  const named = safeFilename(part.filename);
  if (named) return withExtension(named, part.contentType, null);
  const located = safeFilename(locationName(part.contentLocation));
  if (!located) return null;
  return withExtension(located, part.contentType, 'bin');
}

/** `name`, with the extension of `contentType` (else `fallback`) when it has none. */
function withExtension(
  name: string,
  contentType: string,
  fallback: string | null,
): string {
  if (/\.[^.\s]+$/.test(name)) return name;
  const extension = EXTENSIONS[contentType] ?? fallback;
  return extension ? (safeFilename(`${name}.${extension}`) ?? name) : name;
}

/** The file name a Content-Location ends with: no query or fragment, percent-decoded. */
function locationName(location: string | undefined): string | undefined {
  if (!location) return undefined;
  const path = location
    .replace(/[?#].*$/s, '')
    .replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
  const last = path.split(/[\\/]/).pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/**
 * The name within MAX_FILENAME_BYTES: the part before the extension is cut after a whole
 * character (a grapheme: no half emoji, no accent without its letter), the extension kept.
 */
function capLength(name: string): string {
  if (byteLength(name) <= MAX_FILENAME_BYTES) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot) : '';
  const kept = byteLength(extension) <= MAX_EXTENSION_BYTES ? extension : '';
  const stem = kept ? name.slice(0, dot) : name;
  let room = MAX_FILENAME_BYTES - byteLength(kept);
  let cut = '';
  // A character takes a byte at least, so one that starts past the first MAX_FILENAME_BYTES
  // code units cannot fit: segmenting twice that many is enough, however long the name.
  const head = stem.slice(0, 2 * MAX_FILENAME_BYTES);
  for (const { segment } of graphemes.segment(head)) {
    room -= byteLength(segment);
    if (room < 0) break;
    cut += segment;
  }
  return cut.trimEnd() + kept;
}
