// A body the API can take. Past api.maxBodyBytes, or when the API answers 413, the largest
// attachments are left out one by one and named in a note in `content`; with none left and
// still a 413, the content itself gives way to a note. Never dead for its size alone: the raw
// message is kept (the attempt files it in held/, see pipeline/decide.ts).
import type { ApiAttachment, ApiPayload } from '../map/api-payload.js';
import { textToHtml } from '../map/html.js';
import type { Posted } from './http-exchange.js';
import { serializePayload } from './payload-stream.js';

/** The format of `content`: HTML (escaped note), or plain text (mapping.content: text). */
export type ContentFormat = 'html' | 'text';

/** A body, and what was left out of the original to make it. */
export interface Fitted {
  payload: ApiPayload;
  /** the attachments left out, largest first */
  leftOut: ApiAttachment[];
  /** the content too was replaced by a note */
  contentLeftOut: boolean;
}

/** What a POST of a fitted body came to: the exchange, and the names left out (if any). */
export type FittedPost = Posted & { leftOut?: string[] };

/** `payload` as it is when its JSON fits in `limit` bytes, else with its largest attachments left out. */
export function fitBody(
  payload: ApiPayload,
  limit: number,
  format: ContentFormat,
): Fitted {
  let fitted: Fitted = { payload, leftOut: [], contentLeftOut: false };
  while (serializePayload(fitted.payload).length > limit) {
    const smaller = leaveOutMore(payload, fitted, format);
    // without attachments it is posted as it is: a 413 then replaces the content
    if (!smaller || smaller.contentLeftOut) break;
    fitted = smaller;
  }
  return fitted;
}

/**
 * The original `payload` with one more attachment left out (the largest still in), or, none
 * left, its content replaced by a note. Null when nothing more can go.
 */
export function leaveOutMore(
  payload: ApiPayload,
  fitted: Fitted,
  format: ContentFormat,
): Fitted | null {
  const kept = (payload.attachments ?? []).filter(
    a => !fitted.leftOut.includes(a),
  );
  if (kept.length > 0) {
    const largest = kept.reduce((a, b) => (b.file.size > a.file.size ? b : a));
    const leftOut = [...fitted.leftOut, largest];
    return {
      payload: withNote(
        { ...payload, attachments: kept.filter(a => a !== largest) },
        leftOut,
        false,
        format,
      ),
      leftOut,
      contentLeftOut: false,
    };
  }
  if (fitted.contentLeftOut) return null;
  return {
    payload: withNote(
      { ...payload, attachments: undefined },
      fitted.leftOut,
      true,
      format,
    ),
    leftOut: fitted.leftOut,
    contentLeftOut: true,
  };
}

/**
 * Posts `payload` with `post`, fitted to `limit`, and again with less after each 413 until
 * nothing more can go. The answer says what was left out.
 */
export async function postFitted(
  payload: ApiPayload,
  options: { limit: number; format: ContentFormat },
  post: (payload: ApiPayload) => Promise<Posted>,
): Promise<FittedPost> {
  let fitted = fitBody(payload, options.limit, options.format);
  for (;;) {
    const posted = await post(fitted.payload);
    const smaller =
      posted.status === 413
        ? leaveOutMore(payload, fitted, options.format)
        : null;
    if (!smaller) return withLeftOut(posted, fitted);
    fitted = smaller;
  }
}

function withLeftOut(posted: Posted, fitted: Fitted): FittedPost {
  const names = fitted.leftOut.map(a => a.name);
  if (fitted.contentLeftOut) names.push('(the message text)');
  return names.length > 0 ? { ...posted, leftOut: names } : posted;
}

/** A size for people: 1.5 MiB, 20 KiB, 300 bytes. */
export function humanSize(bytes: number): string {
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${bytes} bytes`;
}

/** The body with the note naming what was left out: after the content, in its format. */
function withNote(
  payload: ApiPayload,
  leftOut: ApiAttachment[],
  contentLeftOut: boolean,
  format: ContentFormat,
): ApiPayload {
  const names = leftOut.map(a => `${a.name} (${humanSize(a.file.size)})`);
  const what = [
    ...(contentLeftOut ? ['the message text'] : []),
    ...(names.length ? [`attachments: ${names.join(', ')}`] : []),
  ].join('; ');
  const note = `Left out by mailbridge, too large for the helpdesk API: ${what}. The original message is kept (mailbridge queue held).`;
  const content = contentLeftOut ? undefined : payload.content;
  if (format === 'text') {
    return {
      ...payload,
      content: content ? `${content}\n\n[${note}]` : `[${note}]`,
    };
  }
  const html = textToHtml(note);
  return { ...payload, content: content ? `${content}\n${html}` : html };
}
