// A plain-text reply without its quoted history: the new text only, or the text unchanged when
// the quote cannot be told from the news. One pass over the lines; every pattern is per line.
import {
  MAX_MARKER_LINE,
  headerKind,
  isAttribution,
  introducesQuote,
  isForwardMarker,
  isHeaderBlock,
  isMobileSignature,
  isOriginalMessageLine,
  isOutlookSeparator,
  opensAttribution,
  type HeaderKind,
} from './quote-patterns.js';

/**
 * How far down the quote is looked for: a reply's new text is above it, and every line
 * scanned costs a few pattern tests. Past it (a text of thousands of lines with no quote
 * header yet) the text is kept whole.
 */
const MAX_SCAN_LINES = 5000;

/** A `>` quoted line (as written by every client; up to three spaces before it). */
function isQuoted(line: string): boolean {
  return /^ {0,3}>/.test(line);
}

function isBlank(line: string): boolean {
  return !/\S/.test(line.replace(/\u00a0/g, ' '));
}

/**
 * The text before the quoted history, or the text as it came when unsure:
 * - top-posting: cut at the first quote header (an "On ... wrote:" line followed by `>` lines
 *   to the end or naming a date or address, "-----Original Message-----", an Outlook or Yahoo
 *   From:/Sent:/To:/Subject: block) or at a `>` block that runs to the end;
 * - bottom-posting: one leading `>` block (with its attribution) and the answer below it;
 * - anything else (answers between quotes, a forwarded-message line first) is kept whole.
 * A "Sent from my iPhone" line left last is dropped; a cut that leaves nothing (or only that
 * line) keeps it all, and so does a quote that starts below the first MAX_SCAN_LINES lines.
 */
export function stripTextQuotes(text: string): string {
  const lines = text.split(/\r?\n/);
  const kept = keptLines(lines);
  if (!kept) return text;
  const trimmed = withoutTrailing(kept);
  // nothing left but a mobile signature: nothing new, keep it all
  const unsigned = withoutTrailing(
    trimmed.length && isMobileSignature(trimmed.at(-1)!)
      ? trimmed.slice(0, -1)
      : trimmed,
  );
  return unsigned.length ? unsigned.join('\n') : text;
}

/** The lines to keep, or undefined to keep the text as it is. */
function keptLines(lines: string[]): string[] | undefined {
  for (let i = 0; i < Math.min(lines.length, MAX_SCAN_LINES); i++) {
    const line = lines[i]!;
    if (isBlank(line)) continue;
    if (isForwardMarker(line)) return undefined;
    if (isQuoted(line)) return aroundQuoteBlock(lines, i);
    if (startsQuoteHistory(lines, i)) return lines.slice(0, i);
  }
  return undefined;
}

/**
 * Whether line i starts the quoted history (everything from it on goes). An attribution whose
 * `>` block is followed by more text is not cut here: aroundQuoteBlock judges that block.
 */
function startsQuoteHistory(lines: string[], i: number): boolean {
  const line = lines[i]!;
  if (isOriginalMessageLine(line) || headerBlockAt(lines, i)) return true;
  if (isOutlookSeparator(line)) {
    return headerBlockAt(lines, nextFilled(lines, i + 1));
  }
  const attribution = attributionAt(lines, i);
  if (attribution === undefined) return false;
  const next = nextFilled(lines, attribution.end);
  if (next < lines.length && isQuoted(lines[next]!)) {
    return onlyQuotedFrom(lines, next);
  }
  return isDated(attribution.text);
}

/**
 * An attribution starting at line i: the line, or the line joined with the next one or two
 * (clients wrap long ones: "On Mon, Apr 2, 2012 at 6:26 PM, Megan <\nm@x> wrote:").
 */
function attributionAt(
  lines: string[],
  i: number,
): { text: string; end: number } | undefined {
  let text = '';
  for (let j = i; j < Math.min(lines.length, i + 3); j++) {
    const line = lines[j]!;
    if (isBlank(line) || isQuoted(line)) return undefined;
    text = text ? `${text} ${line.trim()}` : line.trim();
    if (text.length > MAX_MARKER_LINE) return undefined;
    if (isAttribution(text)) {
      // "Hello" just above "On ... <\nm@x> wrote:" is not part of it
      return attributionStart(lines, i, j) === i
        ? { text, end: j + 1 }
        : undefined;
    }
  }
  return undefined;
}

/**
 * Where an attribution ending at line `last` and found from line i starts: the first line that
 * opens like one ("On ...", "Am ...", a date), else the last line alone ("Marc wrote:").
 */
function attributionStart(lines: string[], i: number, last: number): number {
  for (let k = i; k <= last; k++) {
    if (opensAttribution(lines[k]!)) return k;
  }
  return last;
}

/** An attribution sure enough to cut at without `>` lines after it: an address or a date. */
function isDated(attribution: string): boolean {
  if (attribution.includes('@')) return true;
  return /\d/.test(attribution) && opensAttribution(attribution);
}

/** Whether lines from i on (a run up to ten lines) make a quoted message's header block. */
function headerBlockAt(lines: string[], i: number): boolean {
  if (i >= lines.length) return false;
  const first = headerKind(lines[i]!);
  if (!first) return false;
  const kinds: HeaderKind[] = [first];
  let misses = 0;
  for (let j = i + 1; j < Math.min(lines.length, i + 10); j++) {
    const line = lines[j]!;
    if (isBlank(line)) break;
    const kind = headerKind(line);
    if (kind) kinds.push(kind);
    // a wrapped To: or Cc: line continues without a key
    else if (++misses > 2) break;
  }
  return isHeaderBlock(kinds);
}

/**
 * A `>` block from line q: the text above it when the block (and only quotes) runs to the end,
 * without the attribution line just above it; the answer below it when it is the only block
 * and nothing but an attribution stands above it; else undefined (answers between quotes).
 */
function aroundQuoteBlock(lines: string[], q: number): string[] | undefined {
  if (onlyQuotedFrom(lines, q)) {
    const above = lastFilled(lines, q - 1);
    const cut = above >= 0 && introducesQuote(lines[above]!) ? above : q;
    return lines.slice(0, cut);
  }
  const above = lastFilled(lines, q - 1);
  const top = above >= 0 ? attributionEndingAt(lines, above) : 0;
  if (top === undefined || lastFilled(lines, top - 1) >= 0) return undefined;
  let end = q;
  while (
    end < lines.length &&
    (isQuoted(lines[end]!) || isBlank(lines[end]!))
  ) {
    end++;
  }
  return lines.slice(end).some(isQuoted) ? undefined : lines.slice(end);
}

/** The first line of an attribution (of up to three lines) ending at line `last`. */
function attributionEndingAt(
  lines: string[],
  last: number,
): number | undefined {
  for (let start = last; start >= Math.max(0, last - 2); start--) {
    const found = attributionAt(lines, start);
    if (found?.end === last + 1) return start;
  }
  return undefined;
}

/** Whether every line from i on is quoted or blank. */
function onlyQuotedFrom(lines: string[], i: number): boolean {
  for (let j = i; j < lines.length; j++) {
    if (!isQuoted(lines[j]!) && !isBlank(lines[j]!)) return false;
  }
  return true;
}

function nextFilled(lines: string[], i: number): number {
  let j = i;
  while (j < lines.length && isBlank(lines[j]!)) j++;
  return j;
}

function lastFilled(lines: string[], i: number): number {
  let j = i;
  while (j >= 0 && isBlank(lines[j]!)) j--;
  return j;
}

function withoutTrailing(lines: string[]): string[] {
  const last = lastFilled(lines, lines.length - 1);
  return lines.slice(0, last + 1);
}
