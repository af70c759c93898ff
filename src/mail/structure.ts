// A message's MIME structure, checked while it is received: its parts, their nesting and each
// header block, measured as mailparser's splitter (@zone-eu/mailsplit) measures them, so that a
// message the parser cannot take is refused at the end of DATA, not accepted and then dead.
import { DELIMITER_SUFFIX, delimits, HeaderBlock, NEXT } from './mime-lines.js';

/**
 * The most parts a message may have, itself included: the splitter's own limit
 * (MAX_CHILD_NODES); one more and it refuses the whole message.
 */
export const MAX_MIME_PARTS = 1000;

/**
 * How deep parts may nest below the message: Postfix's `mime_nesting_limit`. The splitter has no
 * depth limit of its own (its part count bounds it), but every open level is compared with each
 * line that starts with `--`, and no mail client nests anywhere near this.
 */
export const MAX_MIME_DEPTH = 100;

/**
 * The largest header block of any part, counted as the splitter counts it: its MAX_HEAD_SIZE,
 * each line costing at least HEADER_LINE_MIN_COST bytes (the block's closing empty line, its own
 * length). One byte more and it refuses the whole message.
 */
export const MAX_HEADER_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

/** Which limit a message went over, and the words the sender is told. */
export interface StructureFault {
  limit: 'parts' | 'depth' | 'header';
  text: string;
}

/**
 * Checks a message's structure as its bytes arrive, in chunks of any size. Only header blocks
 * are read line by line; in a body only lines that start with `--` (or CR `--`) are looked at,
 * found by a native search, and once no boundary is open (any message that is not multipart,
 * after its header block) nothing more is read. Memory stays bounded: a line is carried across
 * chunks only while it may still be a delimiter or a header line within the limit.
 */
export class StructureCheck {
  private found: StructureFault | null = null;
  private parts = 1;
  /** the boundary of each open part, the message first; null while it declares none */
  private readonly open: Array<Buffer | null> = [null];
  private inHeader = true;
  /** the last closing delimiter was the current part's own: its boundary counts no more */
  private inEpilogue = false;
  /** no boundary can match any more: nothing that follows can add a part */
  private done = false;
  /** a line begun in an earlier chunk, still to be judged (its bytes: carry[0, carryLength)) */
  private carry = Buffer.alloc(0);
  private carryLength = 0;
  private carrying = false;
  /** inside a body line that cannot be a delimiter */
  private skipping = false;
  /** the chunk searched last, and where its next `\n-` and `\n\r-` are (-1 none, -2 unknown) */
  private scanned: Buffer | undefined;
  private dashAt = -2;
  private crDashAt = -2;
  private header = new HeaderBlock();

  /** The limit the message went over, or null (so far) when it went over none. */
  get fault(): StructureFault | null {
    return this.found;
  }

  update(chunk: Buffer): void {
    // the search places are of this chunk only (a caller may refill a buffer)
    this.scanned = undefined;
    let pos = 0;
    while (pos < chunk.length && !this.found && !this.done) {
      if (this.carrying) {
        pos = this.continueCarry(chunk, pos);
      } else if (this.skipping) {
        const lf = chunk.indexOf(LF, pos);
        if (lf < 0) return;
        this.skipping = false;
        pos = lf + 1;
      } else if (this.inHeader) {
        const lf = chunk.indexOf(LF, pos);
        if (lf < 0) return this.startCarry(chunk.subarray(pos));
        this.line(chunk.subarray(pos, lf + 1));
        pos = lf + 1;
      } else {
        pos = this.body(chunk, pos);
      }
    }
  }

  /** The verdict once the whole message is in: its last line, unended, is judged too. */
  end(): StructureFault | null {
    if (this.carrying && !this.found && !this.done) {
      this.line(this.takeCarry());
    }
    return this.found;
  }

  /** Body lines from `from` (a line start) on; returns where it stopped. */
  private body(chunk: Buffer, from: number): number {
    let pos = from;
    while (pos < chunk.length) {
      const first = chunk[pos];
      if (first === DASH || first === CR) {
        const lf = chunk.indexOf(LF, pos);
        if (lf < 0) {
          this.startCarry(chunk.subarray(pos));
          return chunk.length;
        }
        this.line(chunk.subarray(pos, lf + 1));
        pos = lf + 1;
        if (this.found || this.done || this.inHeader) return pos;
        continue;
      }
      const next = this.nextDashLine(chunk, pos);
      if (next >= 0) {
        pos = next;
        continue;
      }
      // no candidate line starts in the rest of this chunk: how does its last line stand?
      const lf = chunk.lastIndexOf(LF);
      if (lf < pos) this.skipping = true;
      else if (lf + 2 === chunk.length && chunk[lf + 1] === CR) {
        this.startCarry(chunk.subarray(lf + 1));
      } else if (lf + 1 < chunk.length) this.skipping = true;
      return chunk.length;
    }
    return pos;
  }

  /**
   * Where the next line that starts with `-` or CR `-` starts, after `pos` (a line start whose
   * first byte is neither), or -1. A chunk without a dash (a base64 body) costs one search for
   * the byte; else `\n-` and `\n\r-` are searched, their places kept for the rest of the chunk.
   */
  private nextDashLine(chunk: Buffer, pos: number): number {
    if (this.scanned !== chunk) {
      this.scanned = chunk;
      this.dashAt = this.crDashAt = chunk.indexOf(DASH, pos) < 0 ? -1 : -2;
    }
    if (this.dashAt !== -1 && this.dashAt < pos) {
      this.dashAt = chunk.indexOf('\n-', pos, 'latin1');
    }
    if (this.crDashAt !== -1 && this.crDashAt < pos) {
      this.crDashAt = chunk.indexOf('\n\r-', pos, 'latin1');
    }
    const { dashAt, crDashAt } = this;
    const next =
      dashAt < 0
        ? crDashAt
        : crDashAt < 0
          ? dashAt
          : Math.min(dashAt, crDashAt);
    return next < 0 ? -1 : next + 1;
  }

  /** A whole line (its LF included, but for the last line of the message). */
  private line(line: Buffer): void {
    if (this.delimiter(line)) return;
    if (this.inHeader) {
      const cost = this.header.add(line);
      if (cost > MAX_HEADER_BYTES) this.fail('header');
      else if (this.header.ended) this.endHeader();
    }
  }

  /** Whether `line` delimits a part of an open multipart; if so, its move is made. */
  private delimiter(line: Buffer): boolean {
    const start = line[0] === CR || line[0] === LF ? 1 : 0;
    if (line.length < 4 || line[start] !== DASH || line[start + 1] !== DASH) {
      return false;
    }
    const top = this.open.length - 1;
    const own = this.open[top];
    if (own && !this.inEpilogue) {
      const kind = delimits(line, start, own);
      if (kind === NEXT) this.openPart(top);
      if (kind) return true;
    }
    for (let owner = top - 1; owner >= 0; owner--) {
      const boundary = this.open[owner];
      const kind = boundary ? delimits(line, start, boundary) : 0;
      if (!kind) continue;
      this.open.length = owner + 1;
      if (kind === NEXT) {
        this.openPart(owner);
      } else {
        // the owner's multipart is closed: its epilogue follows
        this.inEpilogue = true;
        this.inHeader = false;
        this.settle();
      }
      return true;
    }
    return false;
  }

  /** A new part below the open one at `parent`. */
  private openPart(parent: number): void {
    this.open.length = parent + 1;
    this.open.push(null);
    this.parts++;
    this.inHeader = true;
    this.inEpilogue = false;
    this.header = new HeaderBlock();
    if (this.parts > MAX_MIME_PARTS) this.fail('parts');
    else if (this.open.length - 1 > MAX_MIME_DEPTH) this.fail('depth');
  }

  private endHeader(): void {
    const boundary = this.header.boundary();
    const top = this.open.length - 1;
    this.open[top] = boundary === null ? null : Buffer.from(boundary, 'latin1');
    this.inHeader = false;
    this.settle();
  }

  /** Done when no open part's boundary can match a line any more (the message's epilogue). */
  private settle(): void {
    const top = this.open.length - 1;
    this.done = this.open.every(
      (boundary, i) => boundary === null || (i === top && this.inEpilogue),
    );
  }

  private startCarry(piece: Buffer): void {
    this.carrying = true;
    this.carryLength = 0;
    this.addCarry(piece);
  }

  /** Adds to the carried line up to its LF; judges it when whole. Returns where it stopped. */
  private continueCarry(chunk: Buffer, pos: number): number {
    const lf = chunk.indexOf(LF, pos);
    const end = lf < 0 ? chunk.length : lf + 1;
    this.addCarry(chunk.subarray(pos, end));
    if (lf < 0) return end;
    // a line dropped as too long to delimit has ended here: nothing more to skip
    if (!this.carrying) this.skipping = false;
    else this.line(this.takeCarry());
    return end;
  }

  /**
   * Keeps a piece (copied: the chunk is not pinned; into a buffer that doubles, so a line sent a
   * byte at a time costs no more), unless the line is past mattering.
   */
  private addCarry(piece: Buffer): void {
    const length = this.carryLength + piece.length;
    if (length > this.longestDelimiter()) {
      if (!this.inHeader) {
        // too long to delimit anything: the rest of it is skipped
        this.dropCarry();
        this.skipping = true;
        return;
      }
      if (this.header.costWith(length) > MAX_HEADER_BYTES) {
        return this.fail('header');
      }
    }
    if (length > this.carry.length) {
      const grown = Buffer.allocUnsafe(
        Math.max(length, 2 * this.carry.length, 256),
      );
      this.carry.copy(grown, 0, 0, this.carryLength);
      this.carry = grown;
    }
    piece.copy(this.carry, this.carryLength);
    this.carryLength = length;
  }

  private takeCarry(): Buffer {
    const line = Buffer.from(this.carry.subarray(0, this.carryLength));
    this.dropCarry();
    return line;
  }

  private dropCarry(): void {
    this.carrying = false;
    this.carryLength = 0;
    // a large buffer is not kept for the next line
    if (this.carry.length > 4096) this.carry = Buffer.alloc(0);
  }

  /** The longest line that could still delimit a part of an open multipart. */
  private longestDelimiter(): number {
    let longest = 0;
    for (const boundary of this.open) {
      if (boundary && boundary.length > longest) longest = boundary.length;
    }
    return longest + DELIMITER_SUFFIX + 1;
  }

  private fail(limit: StructureFault['limit']): void {
    this.dropCarry();
    this.found = {
      limit,
      text:
        limit === 'parts'
          ? `more than ${MAX_MIME_PARTS} MIME parts`
          : limit === 'depth'
            ? `MIME parts nested more than ${MAX_MIME_DEPTH} levels deep`
            : `a header block over ${MAX_HEADER_BYTES / 1024} KiB`,
    };
  }
}
