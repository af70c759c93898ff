// Unit tests of the spool file format: the X-Mailbridge-Queue header line, reading a spooled
// file back (size and Message-ID filled in), and the Message-ID sniffer.
import { expect } from 'chai';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteConfig } from '../../src/config/schema.js';
import { BodyDigest, fingerprint } from '../../src/mail/fingerprint.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { newQueueEntry, type QueueEntry } from '../../src/spool/queue-entry.js';
import {
  findMessageId,
  headerBlock,
  HEADER_SNIFF_BYTES,
  parseSpoolHeader,
  readSpoolFile,
  SPOOL_HEADER_NAME,
  spoolHeader,
} from '../../src/spool/spool-file.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const ROUTES: RouteConfig[] = [
  { match: '*', thread_from_subaddress: false, fields: {} },
];
const RAW = Buffer.from(
  // a raw value that normalising changes: comment dropped, spaces inside the brackets removed
  'Subject: spool file\r\nMessage-ID: < file@example.net > (ours)\r\n\r\nHi.\r\n',
);

/** An entry as the SMTP side writes it before the bytes arrive (as it reads back from JSON). */
function entry(
  id: string,
  options: { mailFrom?: string; rcptTo?: string[] } = {},
): QueueEntry {
  const rcptTo = options.rcptTo ?? ['support@example.com'];
  const made = newQueueEntry({
    envelope: {
      id,
      mailFrom: options.mailFrom ?? 'jane@example.net',
      rcptTo,
      receivedAt: new Date(NOW).toISOString(),
    },
    groups: groupByRoute(rcptTo, ROUTES),
    messageId: null,
    size: 0,
    now: NOW,
  });
  return JSON.parse(JSON.stringify(made)) as QueueEntry;
}

describe('spool file', () => {
  describe('spoolHeader / parseSpoolHeader', () => {
    const cases: { name: string; entry: QueueEntry }[] = [
      { name: 'an ASCII envelope', entry: entry('ASCII1') },
      {
        name: 'non-ASCII in the envelope (counted in bytes)',
        entry: entry('UTF8', {
          mailFrom: 'jürgen@bücher.example',
          rcptTo: ['støtte@example.com', '支持@example.com'],
        }),
      },
      {
        name: 'a dead entry with history',
        entry: {
          ...entry('DEAD1'),
          attempts: 3,
          history: [{ at: new Date(NOW).toISOString(), results: { 0: 'x' } }],
          dead: { reason: 'refused', at: new Date(NOW).toISOString() },
        },
      },
    ];
    for (const { name, entry: e } of cases) {
      it(`round trip: ${name}; offset is the header's length in bytes`, () => {
        const header = spoolHeader(e);
        const text = header.toString('utf8');
        expect(text.startsWith(`${SPOOL_HEADER_NAME}: `)).to.equal(true);
        expect(text.endsWith('\r\n')).to.equal(true);
        // one line: JSON.stringify never writes a raw CR or LF
        expect(text.indexOf('\n')).to.equal(text.length - 1);
        expect(header.length).to.equal(Buffer.byteLength(text, 'utf8'));
        const parsed = parseSpoolHeader(Buffer.concat([header, RAW]));
        expect(parsed).to.deep.equal({ entry: e, offset: header.length });
      });
    }

    it('counts non-ASCII characters in bytes, not in UTF-16 units', () => {
      const e = entry('UTF8B', { mailFrom: 'jürgen@bücher.example' });
      const header = spoolHeader(e);
      expect(header.length).to.be.greaterThan(header.toString('utf8').length);
      expect(parseSpoolHeader(header)?.offset).to.equal(header.length);
      // the raw message starts right at the offset
      const file = Buffer.concat([header, RAW]);
      expect(file.subarray(header.length).equals(RAW)).to.equal(true);
    });

    it('does not write rawOffset into the header', () => {
      const e = { ...entry('OFF1'), rawOffset: 1234 };
      const header = spoolHeader(e);
      expect(header.toString('utf8')).not.to.include('rawOffset');
      const { rawOffset: _dropped, ...rest } = e;
      expect(parseSpoolHeader(header)?.entry).to.deep.equal(rest);
    });

    const whole = spoolHeader(entry('BAD1'));
    const invalid: { name: string; head: Buffer }[] = [
      { name: 'an empty head', head: Buffer.alloc(0) },
      { name: 'a plain message', head: RAW },
      {
        name: 'the prefix in another case',
        head: Buffer.from(
          whole.toString().replace(SPOOL_HEADER_NAME, 'x-mailbridge-queue'),
        ),
      },
      {
        name: 'the prefix without its space',
        head: Buffer.from(`${SPOOL_HEADER_NAME}:{}\r\n`),
      },
      {
        name: 'a head shorter than the prefix',
        head: whole.subarray(0, 5),
      },
      {
        name: 'a head cut before its LF',
        head: whole.subarray(0, whole.length - 1),
      },
      {
        name: 'a head cut inside the JSON',
        head: whole.subarray(0, Math.floor(whole.length / 2)),
      },
      {
        name: 'broken JSON',
        head: Buffer.from(`${SPOOL_HEADER_NAME}: {"id":"X",\r\n`),
      },
      {
        name: 'JSON that is not an entry (no id)',
        head: Buffer.from(`${SPOOL_HEADER_NAME}: {"routes":[]}\r\n`),
      },
      {
        name: 'JSON that is not an entry (no routes)',
        head: Buffer.from(`${SPOOL_HEADER_NAME}: {"id":"X"}\r\n`),
      },
      {
        name: 'JSON null',
        head: Buffer.from(`${SPOOL_HEADER_NAME}: null\r\n`),
      },
    ];
    for (const { name, head } of invalid) {
      it(`parseSpoolHeader of ${name} -> null`, () => {
        expect(parseSpoolHeader(head)).to.equal(null);
      });
    }
  });

  describe('readSpoolFile', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mailbridge-spool-file-'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    /** Many recipients, so the header line grows past one sniff (64 KiB) or several. */
    function recipients(count: number): string[] {
      return Array.from(
        { length: count },
        (_, i) => `recipient-${String(i).padStart(5, '0')}@example.com`,
      );
    }

    const body = (bytes: number) =>
      Buffer.from(`${'x'.repeat(bytes - 2)}\r\n`, 'latin1');

    const cases: {
      name: string;
      entry: QueueEntry;
      raw: Buffer;
      messageId: string | null;
    }[] = [
      {
        name: 'a small message',
        entry: entry('SMALL'),
        raw: RAW,
        messageId: '<file@example.net>',
      },
      {
        name: 'a message without a Message-ID',
        entry: entry('NOID'),
        raw: Buffer.from('Subject: none\r\n\r\nMessage-ID: <body@x>\r\n'),
        messageId: null,
      },
      {
        name: 'an empty message',
        entry: entry('EMPTY'),
        raw: Buffer.alloc(0),
        messageId: null,
      },
      {
        name: 'a large message (the raw part over 64 KiB)',
        entry: entry('LARGE'),
        raw: Buffer.concat([RAW, body(200 * 1024)]),
        messageId: '<file@example.net>',
      },
      {
        name: 'a header over 64 KiB (many recipients)',
        entry: entry('WIDE', { rcptTo: recipients(1500) }),
        raw: Buffer.concat([RAW, body(100 * 1024)]),
        messageId: '<file@example.net>',
      },
      {
        name: 'a header over 64 KiB and a short raw part',
        entry: entry('WIDE2', { rcptTo: recipients(1500) }),
        raw: RAW,
        messageId: '<file@example.net>',
      },
      {
        name: 'a header of several sniffs (over 256 KiB)',
        entry: entry('WIDER', { rcptTo: recipients(6000) }),
        raw: Buffer.concat([RAW, body(70 * 1024)]),
        messageId: '<file@example.net>',
      },
    ];
    /** The fingerprint receiveToFile gives the same bytes, computed in one piece. */
    function fingerprintOf(raw: Buffer): string {
      const digest = new BodyDigest();
      digest.update(raw);
      const headers = headerBlock(raw);
      return fingerprint(headers, digest.digest(), findMessageId(raw));
    }

    for (const c of cases) {
      it(`fills in size, the normalised Message-ID and the fingerprint: ${c.name}`, async () => {
        const header = spoolHeader(c.entry);
        const path = join(dir, `${c.entry.id}.eml`);
        await writeFile(path, Buffer.concat([header, c.raw]));
        const read = await readSpoolFile(path);
        expect(read).to.deep.equal({
          ...c.entry,
          size: c.raw.length,
          messageId: c.messageId,
          fingerprint: fingerprintOf(c.raw),
          rawOffset: header.length,
        });
        expect(read!.size).to.equal((await stat(path)).size - header.length);
      });
    }

    it('the header of the wide cases really is over 64 KiB', () => {
      const header = spoolHeader(entry('WIDE', { rcptTo: recipients(1500) }));
      expect(header.length).to.be.greaterThan(HEADER_SNIFF_BYTES);
      const wider = spoolHeader(entry('WIDER', { rcptTo: recipients(6000) }));
      expect(wider.length).to.be.greaterThan(4 * HEADER_SNIFF_BYTES);
    });

    const headless: { name: string; content: Buffer }[] = [
      { name: 'a plain message', content: RAW },
      { name: 'an empty file', content: Buffer.alloc(0) },
      {
        name: 'a header cut short (no LF)',
        content: spoolHeader(entry('CUT')).subarray(0, 40),
      },
      {
        name: 'a wide header cut short (over 64 KiB, no LF)',
        content: spoolHeader(
          entry('CUTW', { rcptTo: recipients(1500) }),
        ).subarray(0, HEADER_SNIFF_BYTES + 100),
      },
    ];
    for (const { name, content } of headless) {
      it(`a file without a whole header -> null: ${name}`, async () => {
        const path = join(dir, 'headless.eml');
        await writeFile(path, content);
        expect(await readSpoolFile(path)).to.equal(null);
      });
    }

    it('a missing file rejects with ENOENT', async () => {
      let failure: NodeJS.ErrnoException | undefined;
      await readSpoolFile(join(dir, 'nope.eml')).catch(err => (failure = err));
      expect(failure?.code).to.equal('ENOENT');
    });
  });

  describe('findMessageId', () => {
    const cases: { name: string; start: string; expected: string | null }[] = [
      {
        name: 'a plain header',
        start: 'Subject: a\r\nMessage-ID: <a@example.net>\r\n\r\nbody\r\n',
        expected: '<a@example.net>',
      },
      {
        name: 'another case, LF line ends',
        start: 'subject: a\nmessage-id:<b@example.net>\n\nbody\n',
        expected: '<b@example.net>',
      },
      {
        name: 'a folded header (unfolded, not normalised)',
        start: 'Message-ID:\r\n <c@example.net>\r\nSubject: x\r\n\r\n',
        expected: '<c@example.net>',
      },
      {
        name: 'a value folded in two',
        start: 'Message-Id: <d@\r\n\texample.net>\r\n\r\n',
        expected: '<d@ example.net>',
      },
      {
        name: 'a header with no blank line after it',
        start: 'Subject: a\r\nMessage-ID: <e@example.net>',
        expected: '<e@example.net>',
      },
      {
        name: 'no Message-ID',
        start: 'Subject: a\r\nFrom: x@example.net\r\n\r\nbody\r\n',
        expected: null,
      },
      {
        name: 'an empty Message-ID',
        start: 'Message-ID:   \r\n\r\n',
        expected: null,
      },
      {
        name: 'one after the blank line (in the body): ignored',
        start: 'Subject: a\r\n\r\nMessage-ID: <body@example.net>\r\n',
        expected: null,
      },
      {
        name: 'one inside a folded header value: not a field of its own',
        start: 'Subject: a\r\n Message-ID: <fake@example.net>\r\n\r\n',
        expected: null,
      },
      {
        name: 'a field whose name only starts the same',
        start: 'Message-ID-Extra: <x@example.net>\r\n\r\n',
        expected: null,
      },
    ];
    for (const { name, start, expected } of cases) {
      it(`${name} -> ${String(expected)}`, () => {
        expect(findMessageId(Buffer.from(start, 'latin1'))).to.equal(expected);
      });
    }

    it('only looks at the first 64 KiB', () => {
      const filler = `X-Filler: ${'f'.repeat(HEADER_SNIFF_BYTES)}\r\n`;
      const start = Buffer.from(
        `${filler}Message-ID: <late@example.net>\r\n\r\n`,
      );
      expect(findMessageId(start)).to.equal(null);
    });

    // Regression: a message whose first line is empty has an empty header block (RFC 5322); the
    // search for two line breaks in a row took a Message-ID line of the body instead, which
    // mailparser does not.
    for (const { ends, start } of [
      { ends: 'CRLF', start: '\r\nMessage-ID: <body@x>\r\n' },
      { ends: 'LF', start: '\nMessage-ID: <body@x>\n' },
    ]) {
      it(`an empty header block (${ends}): a Message-ID line in the body is not taken`, () => {
        expect(findMessageId(Buffer.from(start))).to.equal(null);
      });
    }
  });
});
