// The lines of a MIME message as mailparser's splitter reads them: whether a line delimits a
// part of a boundary, and a part's header block (its cost and its Content-Type's boundary).
import { boundaryOf } from './content-type.js';

/** A header line costs at least this much against MAX_HEADER_BYTES, as the splitter counts it. */
export const HEADER_LINE_MIN_COST = 64;
/** the most a delimiter line may carry after `--boundary`: `--`, whitespace, a line end */
export const DELIMITER_SUFFIX = 2 + 2 + 998 + 2;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const DASH = 0x2d;

/** what delimits() finds: the next part's delimiter, or the closing one */
export const NEXT = 1;
export const CLOSE = 2;

/**
 * Whether `line` (from `start`) is a delimiter of `boundary`: NEXT, CLOSE or 0. The splitter's
 * rule: `--boundary` and an optional `--`, then SP/HTAB, then CRs and an LF (only a closing
 * delimiter may end the message without a line ending).
 */
export function delimits(
  line: Buffer,
  start: number,
  boundary: Buffer,
): number {
  const length = boundary.length;
  if (
    line.length < length + 3 + start ||
    line.length > length + DELIMITER_SUFFIX + start
  ) {
    return 0;
  }
  if (line.compare(boundary, 0, length, start + 2, start + 2 + length) !== 0) {
    return 0;
  }
  let i = start + 2 + length;
  let kind = NEXT;
  if (line[i] === DASH) {
    if (line[i + 1] !== DASH) return 0;
    kind = CLOSE;
    i += 2;
  }
  while (i < line.length && (line[i] === SP || line[i] === HTAB)) i++;
  if (i === line.length) return kind === CLOSE ? CLOSE : 0;
  while (i < line.length && line[i] === CR) i++;
  if (i < line.length && line[i] === LF) i++;
  return i === line.length ? kind : 0;
}

/**
 * One part's header block, line by line: what it costs against MAX_HEADER_BYTES, and its first
 * Content-Type header, found as the splitter's Headers finds it (the key is what comes before the
 * first colon of the unfolded header, trimmed; a first line `From ` or `POST ` is no header).
 */
export class HeaderBlock {
  ended = false;
  private cost = 0;
  private lines = 0;
  /** the header being read, while it may be the Content-Type (its key not known yet, or it) */
  private entry: string | null = null;
  private keyKnown = false;
  private contentType: string | null = null;

  /** Counts a line (its LF included) of the block; returns the block's cost so far. */
  add(line: Buffer): number {
    const end =
      (line.length === 1 && line[0] === LF) ||
      (line.length === 2 && line[0] === CR && line[1] === LF);
    this.cost += end
      ? line.length
      : Math.max(line.length, HEADER_LINE_MIN_COST);
    if (end) {
      this.finishEntry();
      this.ended = true;
      return this.cost;
    }
    // the line without its ending, as the splitter's Headers splits lines (at CRLF or LF)
    const ending = line.at(-1) !== LF ? 0 : line.at(-2) === CR ? 2 : 1;
    const text = line.toString('latin1', 0, line.length - ending);
    const first = this.lines++ === 0;
    if (!first && (text[0] === ' ' || text[0] === '\t')) {
      if (this.entry === null) return this.cost;
      const before = this.entry;
      this.entry += `\r\n${text}`;
      if (!this.keyKnown) this.findKey(before, text);
      return this.cost;
    }
    this.finishEntry();
    if (first && /^(?:from|post) /i.test(text)) return this.cost;
    this.entry = text;
    this.keyKnown = false;
    this.findKey('', text);
    return this.cost;
  }

  /** The cost with a line of `length` bytes not added yet. */
  costWith(length: number): number {
    return this.cost + Math.max(length, HEADER_LINE_MIN_COST);
  }

  /** The boundary the block's Content-Type declares, or null. */
  boundary(): string | null {
    this.finishEntry();
    return this.contentType === null ? null : boundaryOf(this.contentType);
  }

  /** Settles the key once a colon appears: `before` is the entry so far, `text` the new line. */
  private findKey(before: string, text: string): void {
    const colon = text.indexOf(':');
    if (colon < 0) return;
    const key = (before ? `${before}\r\n` : '') + text.slice(0, colon);
    this.keyKnown = true;
    if (
      this.contentType !== null ||
      key.trim().toLowerCase() !== 'content-type'
    ) {
      this.entry = null;
    }
  }

  private finishEntry(): void {
    if (this.entry !== null && this.keyKnown) this.contentType ??= this.entry;
    this.entry = null;
  }
}
