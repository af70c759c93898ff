// What makes a message the same message wherever it travelled: its From address and a digest
// of its body (and its header block when it has no Message-ID). The body is read so that what
// relays commonly rewrite does not count: line ends (LF or CRLF), whitespace at a line's end,
// empty lines at the end. Dedupe records carry it (docs/architecture.md, glossary).
import { createHash, hash, type Hash } from 'node:crypto';

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');

/**
 * Body lines as they are digested: no whitespace at a line's end, every line ending CRLF. Each
 * run of spaces and tabs is matched once, whole, and dropped when a line end follows it: a
 * lookahead (`/[ \t]+(?=\r?\n)/`) would try every start inside a run, which is quadratic (64 KiB
 * of spaces without a line end took 16 s of the main thread; a fuzz case found it).
 */
function canonical(bytes: Buffer): Buffer {
  const text = bytes
    .toString('latin1')
    .replace(/[ \t]+/g, (run: string, at: number, whole: string) => {
      const next = at + run.length;
      const atLineEnd =
        whole.charCodeAt(next) === LF ||
        (whole.charCodeAt(next) === CR && whole.charCodeAt(next + 1) === LF);
      return atLineEnd ? '' : run;
    })
    .replace(/\r?\n/g, '\r\n');
  return Buffer.from(text, 'latin1');
}

/**
 * Whether `bytes` (whole lines, from a line's start) read differently once canonical: a bare
 * LF, or whitespace at a line's end. Ordinary mail has neither and is digested as it is; the
 * check visits line ends only (a search for one byte is a native scan). NB! the latin1 string is
 * deliberate. A search on the bytes allocates nothing, and halved the SMTP thread's young-generation
 * collections, but those collections are what free the chunks a large message arrives in (their
 * memory is outside V8's heap, released with their wrappers): with it, a 27 MiB message grew the
 * peak RSS by 29 to 33 MiB instead of 14 to 18 (docs/benchmark.md).
 */
function needsCanonical(bytes: Buffer): boolean {
  const text = bytes.toString('latin1');
  for (let lf = text.indexOf('\n'); lf >= 0; lf = text.indexOf('\n', lf + 1)) {
    if (text.charCodeAt(lf - 1) !== CR) return true;
    const before = text.charCodeAt(lf - 2);
    if (before === 0x20 || before === 0x09) return true;
  }
  return false;
}

/** A line left unfinished longer than this is hashed as far as its trailing whitespace. */
const PARTIAL_LIMIT = 1024;

/**
 * Digests a message's body as its bytes arrive, in chunks of any size: the header block (up to
 * the first empty line) is skipped, each body line is read as canonical() reads it, and empty
 * lines at the end are ignored. Memory is bounded whatever the line lengths.
 */
export class BodyDigest {
  private readonly hash: Hash = createHash('sha256');
  private inBody = false;
  /** header scan: the last byte was a LF (or nothing yet), or a CR right after a LF */
  private afterLf = true;
  private afterLfCr = false;
  /** the body bytes after the last line feed, not hashed yet */
  private partial: Buffer = Buffer.alloc(0);
  /** empty lines seen and not hashed yet (they count only if text follows) */
  private pending = 0;
  /** a line was partly hashed and is still open */
  private midLine = false;

  update(chunk: Buffer): void {
    let body = chunk;
    if (!this.inBody) {
      const start = this.bodyStart(chunk);
      if (start < 0) return;
      this.inBody = true;
      body = chunk.subarray(start);
    }
    if (body.length === 0) return;
    const bytes =
      this.partial.length > 0 ? Buffer.concat([this.partial, body]) : body;
    const lastLf = bytes.lastIndexOf(LF);
    let rest = bytes;
    if (lastLf >= 0) {
      const lines = bytes.subarray(0, lastLf + 1);
      this.emit(needsCanonical(lines) ? canonical(lines) : lines);
      rest = bytes.subarray(lastLf + 1);
    }
    if (rest.length > PARTIAL_LIMIT) {
      // a long line: hash it up to its trailing whitespace, which the next bytes may extend
      let end = rest.length;
      while (end > 0 && isSpaceOrCr(rest[end - 1]!)) end--;
      if (rest.length - end > PARTIAL_LIMIT) end = rest.length;
      this.emit(canonical(rest.subarray(0, end)));
      rest = rest.subarray(end);
    }
    // a copy: the caller's chunk may be reused once this returns
    this.partial = Buffer.from(rest);
  }

  /** The digest (base64url); the digest of an empty body when no body came. */
  digest(): string {
    const last = canonical(this.partial)
      .toString('latin1')
      .replace(/[ \t\r]+$/, '');
    if (last.length > 0) this.emit(Buffer.from(`${last}\r\n`, 'latin1'));
    else if (this.midLine) this.emit(CRLF);
    return this.hash.digest('base64url');
  }

  /** Where the body starts in `chunk` (after the header block's empty line), or -1. */
  private bodyStart(chunk: Buffer): number {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === LF) {
        if (this.afterLf || this.afterLfCr) return i + 1;
        this.afterLf = true;
        this.afterLfCr = false;
      } else if (byte === CR && this.afterLf) {
        this.afterLf = false;
        this.afterLfCr = true;
      } else {
        this.afterLf = false;
        this.afterLfCr = false;
        // jump to the next line feed: header lines are not read byte by byte
        const lf = chunk.indexOf(LF, i + 1);
        if (lf < 0) return -1;
        i = lf - 1;
      }
    }
    return -1;
  }

  /**
   * Hashes canonical bytes (whole lines ending CRLF, or a piece of a long line), holding back
   * empty lines until text follows them.
   */
  private emit(bytes: Buffer): void {
    let from = 0;
    if (this.midLine) {
      const end = bytes.indexOf(CRLF);
      if (end < 0) {
        this.hash.update(bytes);
        return;
      }
      this.hash.update(bytes.subarray(0, end + 2));
      this.midLine = false;
      from = end + 2;
    }
    // the line ends at the end of `bytes`, and the empty lines before them
    let last = bytes.length;
    let ends = 0;
    while (
      last - 2 >= from &&
      bytes[last - 1] === LF &&
      bytes[last - 2] === CR
    ) {
      last -= 2;
      ends++;
    }
    if (last === from) {
      this.pending += ends;
      return;
    }
    for (; this.pending > 0; this.pending--) this.hash.update(CRLF);
    if (ends === 0) {
      this.hash.update(bytes.subarray(from));
      this.midLine = true;
      return;
    }
    this.hash.update(bytes.subarray(from, last + 2));
    this.pending = ends - 1;
  }
}

function isSpaceOrCr(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === CR;
}

/** The From address of a header block (lower case, unfolded), or '' without one. */
export function findFromAddress(headerBlock: string): string {
  const match = /^from[ \t]*:[ \t]*(.*)$/im.exec(headerBlock);
  const value = match?.[1]?.trim() ?? '';
  const angled = /<([^<>@\s]+@[^<>\s]+)>/.exec(value);
  return (angled?.[1] ?? bareAddress(value) ?? value).toLowerCase();
}

/**
 * The first word with an `@` inside it (not first, not last), words split at whitespace and
 * `<>"(),;:`: what `/[^\s<>"(),;:]+@[^\s<>"(),;:]+/` finds, in linear time. That pattern tries
 * every start of a long word without an `@` to its end: a From of 60 KB of `=` took 20 s of the
 * main thread (a fuzz case found it).
 */
function bareAddress(value: string): string | undefined {
  return value.split(/[\s<>"(),;:]+/).find(word => {
    const at = word.indexOf('@', 1);
    return at > 0 && at < word.length - 1;
  });
}

/**
 * The fingerprint of a message (22 base64url characters): its From address and body digest,
 * and when it has no Message-ID its whole header block too. Without an id, sender and body
 * alone would make two short messages of one sender (another subject, another day) the same;
 * with the header block, only the same bytes are (a copy relayed another way is posted again:
 * a duplicate at worst, never a loss).
 */
export function fingerprint(
  headers: string,
  bodyDigest: string,
  messageId: string | null,
): string {
  const from = findFromAddress(headers);
  const whole = messageId ? '' : `\n${hash('sha256', headers, 'base64url')}`;
  return hash('sha256', `${from}\n${bodyDigest}${whole}`, 'base64url').slice(
    0,
    22,
  );
}
