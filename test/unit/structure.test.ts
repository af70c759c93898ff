// The MIME structure check of DATA, one row per shape: what it refuses, what it lets through,
// in chunks of any size, and that the parser agrees (what is accepted parses).
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boundaryOf } from '../../src/mail/content-type.js';
import {
  MAX_HEADER_BYTES,
  MAX_MIME_DEPTH,
  MAX_MIME_PARTS,
  StructureCheck,
  type StructureFault,
} from '../../src/mail/structure.js';
import { parseMessage } from '../../src/parse/parse-message.js';

const HEAD = 'From: jane@example.net\r\nSubject: structure\r\n';

/** A multipart/mixed message of `children` text parts (so `children + 1` parts in all). */
function flat(children: number, delimiter = '--b'): string {
  const part = `${delimiter}\r\nContent-Type: text/plain\r\n\r\npart\r\n`;
  return `${HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n${part.repeat(children)}--b--\r\n`;
}

/** Multiparts nested `depth` levels below the message, a text part innermost. */
function nested(depth: number): string {
  let body = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
  for (let level = depth; level >= 1; level--) {
    body = `Content-Type: multipart/mixed; boundary=n${level}\r\n\r\n--n${level}\r\n${body}--n${level}--\r\n`;
  }
  return HEAD + body;
}

/** What header lines cost as the splitter counts them: 64 bytes at least each. */
function costOf(lines: string): number {
  return lines
    .split(/(?<=\n)/)
    .filter(Boolean)
    .reduce((sum, line) => sum + Math.max(line.length, 64), 0);
}

/**
 * A header block (`head`, then filler lines) that costs `cost` bytes as the splitter counts
 * it: short lines count 64 bytes each, one longer line makes up the rest, the empty line its 2.
 */
function headerOfCost(cost: number, head = HEAD): string {
  const fill = cost - 2 - costOf(head);
  const count = Math.floor((fill - 200) / 64);
  const rest = fill - count * 64;
  return `${head}${'X-Filler: 1\r\n'.repeat(count)}X-Last: ${'x'.repeat(rest - 10)}\r\n\r\n`;
}

/** A multipart whose second part's header block costs `cost`. */
function partHeaderOfCost(cost: number): string {
  return (
    `${HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n` +
    '--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b\r\n' +
    headerOfCost(cost, 'Content-Type: text/plain\r\n') +
    'second\r\n--b--\r\n'
  );
}

interface Row {
  name: string;
  raw: string;
  fault: StructureFault['limit'] | null;
  /** whether mailparser refuses it too (false for depth: we refuse below its count limit) */
  parserRefuses?: boolean;
}

const MANY_EPILOGUE = `${flat(2).replace(/--b--\r\n$/, '')}--b--\r\n${'--b\r\nx\r\n'.repeat(2000)}`;

const ROWS: Row[] = [
  {
    name: 'a plain text message',
    raw: `${HEAD}\r\nHello.\r\n`,
    fault: null,
  },
  {
    name: 'a text message full of lines like delimiters: no boundary, none counts',
    raw: `${HEAD}\r\n${'--b\r\n'.repeat(3000)}`,
    fault: null,
  },
  { name: 'a multipart of three parts', raw: flat(2), fault: null },
  {
    name: `${MAX_MIME_PARTS} parts, the message counted: the most the parser takes`,
    raw: flat(MAX_MIME_PARTS - 1),
    fault: null,
  },
  {
    name: `${MAX_MIME_PARTS + 1} parts`,
    raw: flat(MAX_MIME_PARTS),
    fault: 'parts',
    parserRefuses: true,
  },
  {
    name: `${MAX_MIME_PARTS + 1} parts, delimiters after a bare CR`,
    raw: flat(MAX_MIME_PARTS, '\r--b'),
    fault: 'parts',
    parserRefuses: true,
  },
  {
    name: 'delimiter lines in the epilogue do not count',
    raw: MANY_EPILOGUE,
    fault: null,
  },
  {
    name: 'the parts of an attached message (message/rfc822) are not split',
    raw:
      `${HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n` +
      '--b\r\nContent-Type: message/rfc822\r\n\r\n' +
      flat(MAX_MIME_PARTS + 50)
        .replace(/boundary=b/, 'boundary=inner')
        .replace(/--b/g, '--inner') +
      '--b--\r\n',
    fault: null,
  },
  {
    name: 'the boundary of a folded Content-Type with a comment and quotes',
    raw: flat(MAX_MIME_PARTS).replace(
      'Content-Type: multipart/mixed; boundary=b',
      'Content-Type: multipart/mixed;\r\n\tboundary="b" (the boundary)',
    ),
    fault: 'parts',
    parserRefuses: true,
  },
  {
    name: 'an RFC 2231 boundary',
    raw: flat(MAX_MIME_PARTS).replace(
      'boundary=b',
      'boundary*0="";\r\n boundary*1="b"',
    ),
    fault: 'parts',
    parserRefuses: true,
  },
  {
    name: 'an outer delimiter closes an inner multipart left open',
    raw:
      `${HEAD}Content-Type: multipart/mixed; boundary=outer\r\n\r\n` +
      '--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n' +
      '--inner\r\nContent-Type: text/plain\r\n\r\ntext\r\n' +
      '--outer\r\nContent-Type: text/plain\r\n\r\nsecond\r\n'.repeat(
        MAX_MIME_PARTS - 2,
      ) +
      '--outer--\r\n',
    fault: 'parts',
    parserRefuses: true,
  },
  {
    name: `parts nested ${MAX_MIME_DEPTH} levels deep`,
    raw: nested(MAX_MIME_DEPTH),
    fault: null,
  },
  {
    name: `parts nested ${MAX_MIME_DEPTH + 1} levels deep`,
    raw: nested(MAX_MIME_DEPTH + 1),
    fault: 'depth',
  },
  {
    name: '1000 nested multiparts (the report of issue 16)',
    raw: nested(1000),
    fault: 'depth',
    parserRefuses: true,
  },
  {
    name: 'a header block of exactly the limit',
    raw: `${headerOfCost(MAX_HEADER_BYTES)}body\r\n`,
    fault: null,
  },
  {
    name: 'a header block one byte over the limit',
    raw: `${headerOfCost(MAX_HEADER_BYTES + 1)}body\r\n`,
    fault: 'header',
    parserRefuses: true,
  },
  {
    name: 'a header block of one line over the limit',
    raw: `${HEAD}X-Long: ${'y'.repeat(MAX_HEADER_BYTES)}\r\n\r\nbody\r\n`,
    fault: 'header',
    parserRefuses: true,
  },
  {
    name: 'a header block without its empty line, over the limit at the end',
    raw: headerOfCost(MAX_HEADER_BYTES + 64).replace(/\r\n\r\n$/, ''),
    fault: 'header',
    parserRefuses: true,
  },
  {
    name: "a part's header block of exactly the limit",
    raw: partHeaderOfCost(MAX_HEADER_BYTES),
    fault: null,
  },
  {
    name: "a part's header block over the limit",
    raw: partHeaderOfCost(MAX_HEADER_BYTES + 1),
    fault: 'header',
    parserRefuses: true,
  },
];

/** The verdict on `raw` fed in chunks of `size` bytes (0: whole). */
function verdict(raw: Buffer, size: number): StructureFault | null {
  const check = new StructureCheck();
  const step = size || raw.length;
  for (let i = 0; i < raw.length; i += step) {
    check.update(raw.subarray(i, i + step));
  }
  return check.end();
}

describe('StructureCheck', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'structure-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const row of ROWS) {
    it(`${row.name}: ${row.fault ?? 'accepted'}, in chunks of any size`, () => {
      const raw = Buffer.from(row.raw, 'latin1');
      const sizes =
        raw.length <= 256 * 1024 ? [0, 1, 2, 3, 61, 4096] : [0, 3, 4096];
      for (const size of sizes) {
        expect(verdict(raw, size)?.limit ?? null, `chunks of ${size}`).to.equal(
          row.fault,
        );
      }
    });

    it(`${row.name}: the parser ${row.parserRefuses ? 'refuses it too' : 'takes it'}`, async function () {
      this.timeout(20_000);
      const failed = await parseMessage(Buffer.from(row.raw, 'latin1'), {
        attachmentDir: dir,
      }).then(
        async message => {
          await message.dispose();
          return false;
        },
        () => true,
      );
      expect(failed).to.equal(row.parserRefuses ?? false);
    });
  }

  it('names the limit in words the sender is told', () => {
    const texts = [flat(MAX_MIME_PARTS), nested(MAX_MIME_DEPTH + 1)].map(
      raw => verdict(Buffer.from(raw), 0)?.text,
    );
    texts.push(
      verdict(Buffer.from(headerOfCost(MAX_HEADER_BYTES + 1)), 0)?.text,
    );
    expect(texts).to.deep.equal([
      'more than 1000 MIME parts',
      'MIME parts nested more than 100 levels deep',
      'a header block over 1024 KiB',
    ]);
  });

  it('a message that is not multipart: no line after its header block matters', () => {
    const check = new StructureCheck();
    check.update(Buffer.from(`${HEAD}\r\n`));
    // a body line as long as the whole message: neither carried nor scanned
    check.update(Buffer.alloc(8 * 1024 * 1024, 0x2d));
    expect(check.end()).to.equal(null);
  });
});

describe('boundaryOf', () => {
  const rows: Array<[string, string | null]> = [
    ['Content-Type: multipart/mixed; boundary=abc', 'abc'],
    ['Content-Type: multipart/mixed; boundary="a b;c"', 'a b;c'],
    ['content-type : multipart/mixed;\r\n boundary="x"', 'x'],
    ['Content-Type: multipart/mixed; boundary="b" (comment)', 'b'],
    ['Content-Type: multipart/mixed; boundary=(c)b', '(c)b'],
    ['Content-Type: multipart/mixed; boundary="b"junk', 'b'],
    ['Content-Type: multipart/mixed; boundary=b; boundary=c', 'b'],
    ['Content-Type: multipart/mixed; BOUNDARY=b  ', 'b'],
    ["Content-Type: multipart/mixed; boundary*=us-ascii''a%20b", 'a b'],
    ['Content-Type: multipart/mixed; boundary*1=b; boundary*0=a', 'ab'],
    ['Content-Type: multipart/mixed; boundary=x; boundary*0=y', 'y'],
    ['Content-Type: multipart/mixed; boundary=ab\u00e9', null],
    ['Content-Type: multipart/mixed; boundary=""', null],
    ['Content-Type: multipart/mixed', null],
    ['Content-Type: text/plain; boundary=t', 't'],
  ];
  for (const [header, expected] of rows) {
    it(`${JSON.stringify(header)} -> ${String(expected)}`, () => {
      expect(boundaryOf(header)).to.equal(expected);
    });
  }
});
