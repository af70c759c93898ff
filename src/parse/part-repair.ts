// A part the parser would read wrongly, repaired as its headers are read: its name, its body.
import { Transform, type TransformCallback } from 'node:stream';
import { isAscii } from 'node:buffer';
import { isMultibyteUtf8 } from './charset-choice.js';
import { restoreWordSpaces } from './flowed-spaces.js';
import {
  calendarInHeader,
  invalidEscapeName,
  type RawHeaderLine,
} from './raw-part-headers.js';

/** What the MIME splitter knows of a part when its headers are read (the fields used here). */
export interface SplitPart {
  headers?: { lines?: RawHeaderLine[] };
  root?: boolean;
  contentType?: string | false;
  charset?: string | false;
  filename?: string | false;
  flowed?: boolean;
  delSp?: boolean;
}

/** The parser's node of a part: `decoder` takes the encoded body, gives the decoded bytes. */
export interface ParserNode {
  decoder?: Transform;
  isAttachment?: boolean;
}

const BODY_TYPES = new Set(['text/plain', 'text/html']);

/** Windows-1252, the web's reading of a Latin-1 label and mail readers' usual fallback. */
const WINDOWS_1252 = new TextDecoder('windows-1252');

/**
 * Repairs a part in place, before its body is read:
 * - a filename whose RFC 2231 value holds an invalid `%` escape keeps the `%` (raw-part-headers.ts);
 * - a calendar written where the header belongs becomes the body, when the body is empty;
 * - `format=flowed; delsp=yes` text whose sender did not double its spaces keeps the space
 *   between words at a soft break (flowed-spaces.ts), before the parser unfolds it;
 * - a body text part without a charset label whose 8-bit bytes are no UTF-8 is read as
 *   windows-1252 (the parser's default, UTF-8, would show each such byte as U+FFFD).
 */
export function repairPart(part: SplitPart, node: ParserNode): void {
  const lines = part.headers?.lines ?? [];
  const name = invalidEscapeName(lines);
  if (name) part.filename = name;
  if (!node.decoder) return;
  const calendar = calendarInHeader(lines);
  if (calendar) {
    node.decoder = new RewrittenBody(node.decoder, body =>
      body.length ? body : calendar,
    );
  }
  if (isUnlabelledBody(part, node)) {
    node.decoder = new RewrittenBody(node.decoder, body =>
      !isAscii(body) && !isMultibyteUtf8(body)
        ? Buffer.from(WINDOWS_1252.decode(body), 'utf8')
        : body,
    );
  }
  // the parser unfolds flowed text of the body only; a file keeps its bytes
  if (part.flowed && part.delSp && !node.isAttachment) {
    node.decoder = new RewrittenBody(node.decoder, body =>
      Buffer.from(restoreWordSpaces(body.toString('latin1')), 'latin1'),
    );
  }
}

/** A text part of the body (not a file) with no charset label. */
function isUnlabelledBody(part: SplitPart, node: ParserNode): boolean {
  const type = part.contentType || (part.root ? 'text/plain' : '');
  return BODY_TYPES.has(type) && !part.charset && !node.isAttachment;
}

/**
 * A decoder whose whole output is given to `rewrite` first: the parser writes the encoded body
 * to it as to the decoder it wraps, and reads the rewritten bytes when the body ends. Used only
 * for the parts above, whose bodies the parser holds whole anyway (flowed text, a calendar).
 */
class RewrittenBody extends Transform {
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly inner: Transform,
    private readonly rewrite: (body: Buffer) => Buffer,
  ) {
    super();
    inner.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    inner.once('error', (err: Error) => this.destroy(err));
  }

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: TransformCallback,
  ): void {
    if (this.inner.write(chunk)) done();
    else this.inner.once('drain', () => done());
  }

  override _flush(done: TransformCallback): void {
    this.inner.once('end', () => {
      try {
        this.push(this.rewrite(Buffer.concat(this.chunks)));
        done();
      } catch (err) {
        done(err as Error);
      }
    });
    this.inner.end();
  }
}
