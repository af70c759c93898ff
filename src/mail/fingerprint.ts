// What makes a message the same message wherever it travelled: its From address and a digest
// of its body (and its header block when it has no Message-ID), canonicalised as DKIM's "relaxed" body (RFC 6376 3.4.4) so relays that rewrite
// line endings or trailing whitespace do not change it. Dedupe records carry it (docs/delivery.md).
import { createHash, hash, type Hash } from 'node:crypto';

/** A body line's whitespace runs and its end: `a  b \r\n` reads as `a b\n`. */
function canonical(text: string): string {
  return text.replace(/[ \t]+/g, ' ').replace(/ ?\r?\n/g, '\n');
}

/** A line left unfinished longer than this is hashed as far as its trailing whitespace. */
const PARTIAL_LIMIT = 1024;

/**
 * Digests a message's body as its bytes arrive, in chunks of any size: the header block (up to
 * the first empty line) is skipped, each body line is read as DKIM relaxed reads it, and empty
 * lines at the end are ignored. Memory is bounded whatever the line lengths.
 */
export class BodyDigest {
  private readonly hash: Hash = createHash('sha256');
  private inBody = false;
  /** header scan: the bytes since the last line feed were a CR (1) or nothing yet (0) */
  private afterLf = true;
  private afterLfCr = false;
  /** the body text after the last line feed, not hashed yet */
  private partial = '';
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
    const text = this.partial + body.toString('latin1');
    const lastLf = text.lastIndexOf('\n');
    let rest = text;
    if (lastLf >= 0) {
      this.emit(canonical(text.slice(0, lastLf + 1)));
      rest = text.slice(lastLf + 1);
    }
    if (rest.length > PARTIAL_LIMIT) {
      // a long line: hash it up to its trailing whitespace, which the next bytes may extend
      let end = rest.length;
      while (end > 0 && ' \t\r'.includes(rest[end - 1]!)) end--;
      if (rest.length - end > PARTIAL_LIMIT) end = rest.length;
      this.emit(canonical(rest.slice(0, end)));
      rest = rest.slice(end);
    }
    this.partial = rest;
  }

  /** The digest (base64url); the digest of an empty body when no body came. */
  digest(): string {
    const last = canonical(this.partial).replace(/[ \t\r]+$/, '');
    if (last.length > 0) this.emit(`${last}\n`);
    else if (this.midLine) this.emit('\n');
    return this.hash.digest('base64url');
  }

  /** Where the body starts in `chunk` (after the header block's empty line), or -1. */
  private bodyStart(chunk: Buffer): number {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === 0x0a) {
        if (this.afterLf || this.afterLfCr) return i + 1;
        this.afterLf = true;
        this.afterLfCr = false;
      } else if (byte === 0x0d && this.afterLf) {
        this.afterLf = false;
        this.afterLfCr = true;
      } else {
        this.afterLf = false;
        this.afterLfCr = false;
        // jump to the next line feed: header lines are not read byte by byte
        const lf = chunk.indexOf(0x0a, i + 1);
        if (lf < 0) return -1;
        i = lf - 1;
      }
    }
    return -1;
  }

  /** Hashes canonical text, holding back empty lines until text follows them. */
  private emit(text: string): void {
    let from = 0;
    if (this.midLine) {
      const lf = text.indexOf('\n');
      if (lf < 0) {
        this.hash.update(text, 'latin1');
        return;
      }
      this.hash.update(text.slice(0, lf + 1), 'latin1');
      this.midLine = false;
      from = lf + 1;
    }
    let last = text.length - 1;
    while (last >= from && text[last] === '\n') last--;
    if (last < from) {
      this.pending += text.length - from;
      return;
    }
    if (this.pending > 0) this.hash.update('\n'.repeat(this.pending), 'latin1');
    this.hash.update(text.slice(from, last + 1), 'latin1');
    const newlines = text.length - 1 - last;
    if (newlines === 0) {
      this.midLine = true;
      this.pending = 0;
    } else {
      this.hash.update('\n', 'latin1');
      this.pending = newlines - 1;
    }
  }
}

/** The From address of a header block (lower case, unfolded), or '' without one. */
export function findFromAddress(headerBlock: string): string {
  const match = /^from[ \t]*:[ \t]*(.*)$/im.exec(headerBlock);
  const value = match?.[1]?.trim() ?? '';
  const angled = /<([^<>@\s]+@[^<>\s]+)>/.exec(value);
  const bare = /[^\s<>"(),;:]+@[^\s<>"(),;:]+/.exec(value);
  return (angled?.[1] ?? bare?.[0] ?? value).toLowerCase();
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
