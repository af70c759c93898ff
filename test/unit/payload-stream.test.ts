// Tables for payload-stream: the streamed JSON is exactly JSON.stringify of the materialised body.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  base64Length,
  payloadToString,
  serializePayload,
} from '../../src/api/payload-stream.js';
import { shortenAttachments } from '../../src/api/dry-run-sink.js';
import type { ApiPayload } from '../../src/map/api-payload.js';

/** Deterministic bytes of every value (a hash chain), so base64 covers the whole alphabet. */
function bytesOf(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Everything JSON must escape or encode, in one string. */
const TRICKY =
  'quote " backslash \\ slash / tab \t newline \n cr \r nul \u0000 bell \u0007 ' +
  'del \u007f ls \u2028 ps \u2029 é ß 日本語 emoji 😀 lone \ud800 end';

describe('payload-stream', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-payload-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes each attachment to a file: the body by reference and materialised (base64). */
  async function bodies(
    fields: Omit<ApiPayload, 'attachments' | 'ext_msg_id'>,
    attachments: Array<{ name: string; bytes: Buffer }>,
  ): Promise<{ lazy: ApiPayload; materialised: ApiPayload<string> }> {
    const lazy: ApiPayload = { ...fields, ext_msg_id: '<m@example.com>' };
    const materialised: ApiPayload<string> = { ...lazy, attachments: [] };
    lazy.attachments = [];
    for (const [i, { name, bytes }] of attachments.entries()) {
      const path = join(dir, `att-${i}.bin`);
      await writeFile(path, bytes);
      lazy.attachments.push({ name, file: { path, size: bytes.length } });
      materialised.attachments!.push({ name, file: bytes.toString('base64') });
    }
    if (attachments.length === 0) {
      delete lazy.attachments;
      delete materialised.attachments;
    }
    return { lazy, materialised };
  }

  /** The stream's chunks, as they come. */
  async function chunksOf(payload: ApiPayload, indent?: number) {
    const chunks: Buffer[] = [];
    for await (const chunk of serializePayload(payload, { indent }).stream()) {
      chunks.push(chunk as Buffer);
    }
    return chunks;
  }

  describe('attachment sizes around the 3-byte groups and the 64 KiB pieces', () => {
    const sizes = [0, 1, 2, 3, 65535, 65536, 65537, 1024 * 1024 + 1];
    for (const size of sizes) {
      it(`${size} bytes`, async () => {
        const { lazy, materialised } = await bodies(
          { subject: 'sizes', content: 'see attached' },
          [{ name: `blob-${size}.bin`, bytes: bytesOf(size, String(size)) }],
        );
        const expected = JSON.stringify(materialised);
        const serialized = serializePayload(lazy);
        const chunks = await chunksOf(lazy);
        const json = Buffer.concat(chunks).toString('utf8');
        expect(json === expected, 'stream equals JSON.stringify').to.equal(
          true,
        );
        expect(serialized.length).to.equal(Buffer.byteLength(expected));
        expect(await payloadToString(lazy)).to.equal(json);
        // large pieces: every chunk but the last holds at least 64 KiB
        for (const chunk of chunks.slice(0, -1)) {
          expect(chunk.length).to.be.at.least(64 * 1024);
        }
      });
    }
  });

  it('several attachments in one body, in order', async () => {
    const { lazy, materialised } = await bodies({ subject: 'many' }, [
      { name: 'a.bin', bytes: bytesOf(70_000, 'a') },
      { name: 'empty.txt', bytes: Buffer.alloc(0) },
      { name: 'b.bin', bytes: bytesOf(5, 'b') },
    ]);
    expect(await payloadToString(lazy)).to.equal(JSON.stringify(materialised));
  });

  describe('unicode and escaping in the other fields, compact and indented', () => {
    const rows: Array<{
      title: string;
      fields: Omit<ApiPayload, 'attachments' | 'ext_msg_id'>;
      attachment?: string;
    }> = [
      { title: 'no attachments', fields: { subject: TRICKY } },
      {
        title: 'every text field',
        fields: {
          from: '"Zoë \\"Z\\" Ørsted" <zoe@example.com>',
          to: 'support@example.com',
          subject: TRICKY,
          content: `<p>${TRICKY}</p>`,
          mailbox_id: 'mb-ü',
          priority: 1,
        },
        attachment: 'résumé "final" \\ 😀.pdf',
      },
      {
        title:
          'route fields: nested objects, arrays, booleans, null, empty containers',
        fields: {
          read: false,
          tags: ['a', TRICKY, 3, null, { deep: { deeper: [1, [2, []]] } }],
          meta: { empty: {}, list: [], n: -0.5, big: 1e21 },
        },
        attachment: 'x.bin',
      },
    ];
    for (const row of rows) {
      for (const indent of [undefined, 2]) {
        it(`${row.title}${indent ? ', indent 2' : ''}`, async () => {
          const { lazy, materialised } = await bodies(
            row.fields,
            row.attachment
              ? [{ name: row.attachment, bytes: bytesOf(100, row.title) }]
              : [],
          );
          const expected = JSON.stringify(materialised, null, indent);
          const json = await payloadToString(lazy, { indent });
          expect(json).to.equal(expected);
          expect(serializePayload(lazy, { indent }).length).to.equal(
            Buffer.byteLength(expected),
          );
        });
      }
    }
  });

  it('gives a fresh stream per call (one per POST attempt)', async () => {
    const { lazy, materialised } = await bodies({ subject: 'twice' }, [
      { name: 'a.bin', bytes: bytesOf(200_000, 'twice') },
    ]);
    const serialized = serializePayload(lazy);
    const read = async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of serialized.stream()) {
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks).toString('utf8');
    };
    const expected = JSON.stringify(materialised);
    expect(await read()).to.equal(expected);
    expect(await read()).to.equal(expected);
  });

  describe('toBuffer: the whole body in one Buffer, only when it needs no file', () => {
    const rows: Array<{
      title: string;
      payload: () => Promise<ApiPayload>;
      indent?: number;
      inline: boolean;
    }> = [
      {
        title: 'no attachments, everything to escape',
        payload: async () => ({
          ext_msg_id: '<m@example.com>',
          subject: TRICKY,
          content: `<p>${TRICKY}</p>`,
          tags: ['a', null, { deep: [1, []] }],
        }),
        inline: true,
      },
      {
        title: 'no attachments, indent 2',
        payload: async () => ({
          ext_msg_id: '<m@example.com>',
          subject: TRICKY,
          meta: { empty: {}, list: [] },
        }),
        indent: 2,
        inline: true,
      },
      {
        title: 'an empty attachment list',
        payload: async () => ({
          ext_msg_id: '<m@example.com>',
          attachments: [],
        }),
        inline: true,
      },
      {
        title: 'larger than one 64 KiB piece',
        payload: async () => ({
          ext_msg_id: '<m@example.com>',
          content: `${TRICKY} `.repeat(2000),
        }),
        inline: true,
      },
      {
        title:
          'a text over a million characters (kept as a string, not as bytes)',
        payload: async () => ({
          ext_msg_id: '<m@example.com>',
          content: `${TRICKY} `.repeat(Math.ceil(1_100_000 / TRICKY.length)),
        }),
        inline: true,
      },
      {
        title: 'an attachment file -> null',
        payload: async () =>
          (
            await bodies({ subject: 's' }, [
              { name: 'a.bin', bytes: bytesOf(10, 'inline') },
            ])
          ).lazy,
        inline: false,
      },
      {
        title: 'an empty attachment file -> null',
        payload: async () =>
          (
            await bodies({ subject: 's' }, [
              { name: 'a.bin', bytes: Buffer.alloc(0) },
            ])
          ).lazy,
        inline: false,
      },
    ];
    for (const row of rows) {
      it(row.title, async () => {
        const payload = await row.payload();
        const serialized = serializePayload(payload, { indent: row.indent });
        const inline = serialized.toBuffer();
        if (!row.inline) {
          expect(inline).to.equal(null);
          return;
        }
        const streamed = Buffer.concat(await chunksOf(payload, row.indent));
        expect(inline!.equals(streamed), 'same bytes as the stream').to.equal(
          true,
        );
        expect(inline!.length).to.equal(serialized.length);
        expect(inline!.toString('utf8')).to.equal(
          JSON.stringify(payload, null, row.indent),
        );
      });
    }
  });

  it('toBuffer gives a new Buffer each call: one whose memory went to another thread leaves the next whole', async () => {
    const payload: ApiPayload = {
      ext_msg_id: '<m@example.com>',
      content: `${TRICKY} `.repeat(500),
    };
    const serialized = serializePayload(payload);
    const first = serialized.toBuffer()!;
    // as post-thread.ts hands a body over: its ArrayBuffer transferred, the Buffer emptied
    structuredClone(first.buffer, { transfer: [first.buffer as ArrayBuffer] });
    expect(first.length).to.equal(0);
    const json = JSON.stringify(payload);
    expect(serialized.toBuffer()!.toString('utf8')).to.equal(json);
    expect(Buffer.concat(await chunksOf(payload)).toString('utf8')).to.equal(
      json,
    );
  });

  describe('a file that does not hold the announced size fails the stream', () => {
    const rows = [
      { title: 'shorter', actual: 10, announced: 11, error: /holds 10 bytes/ },
      {
        title: 'longer',
        actual: 12,
        announced: 11,
        error: /holds more than/,
      },
      {
        title: 'longer by a whole read',
        actual: 200_000,
        announced: 3,
        error: /holds more than/,
      },
    ];
    for (const row of rows) {
      it(row.title, async () => {
        const path = join(dir, 'changed.bin');
        await writeFile(path, bytesOf(row.actual, row.title));
        const payload: ApiPayload = {
          ext_msg_id: '<m@example.com>',
          attachments: [{ name: 'x', file: { path, size: row.announced } }],
        };
        let error: Error | undefined;
        await payloadToString(payload).catch((err: Error) => (error = err));
        expect(error?.message).to.match(row.error);
      });
    }
  });

  it('a missing file fails the stream', async () => {
    const payload: ApiPayload = {
      ext_msg_id: '<m@example.com>',
      attachments: [
        { name: 'x', file: { path: join(dir, 'gone.bin'), size: 1 } },
      ],
    };
    let error: NodeJS.ErrnoException | undefined;
    await payloadToString(payload).catch(
      (err: NodeJS.ErrnoException) => (error = err),
    );
    expect(error?.code).to.equal('ENOENT');
  });

  describe('base64Length', () => {
    const rows: Array<[number, number]> = [
      [0, 0],
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 8],
      [65535, 87380],
      [65536, 87384],
    ];
    for (const [size, length] of rows) {
      it(`${size} bytes -> ${length} chars`, () => {
        expect(base64Length(size)).to.equal(length);
        expect(base64Length(size)).to.equal(
          Buffer.alloc(size).toString('base64').length,
        );
      });
    }
  });

  it('shortenAttachments (the dry-run log line) gives each base64 length', () => {
    const payload: ApiPayload = {
      ext_msg_id: '<m@example.com>',
      subject: 's',
      attachments: [
        { name: 'a', file: { path: '/x/a', size: 3000 } },
        { name: 'b', file: { path: '/x/b', size: 0 } },
      ],
    };
    expect(shortenAttachments(payload)).to.deep.equal({
      ext_msg_id: '<m@example.com>',
      subject: 's',
      attachments: [
        { name: 'a', file: '<4000 base64 chars>' },
        { name: 'b', file: '<0 base64 chars>' },
      ],
    });
    const plain: ApiPayload = { ext_msg_id: '<m@example.com>' };
    expect(shortenAttachments(plain)).to.deep.equal(plain);
  });
});
