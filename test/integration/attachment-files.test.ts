// Attachments stream through spool tmp/ files: intact at the API, and the files gone after each attempt.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import type { FakeReply } from '../helpers/fake-api.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

type Line = Record<string, unknown>;

/** Different bytes of every value, `size` of them. */
function bytesOf(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >> 8)) % 256;
  return out;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A message with a text part and one base64 attachment. */
function withAttachment(bytes: Buffer, id: string): string {
  return makeMessage(
    {
      From: 'jane@example.net',
      To: 'support@example.com',
      Subject: 'attachment',
      'Message-ID': `<${id}@example.net>`,
      'MIME-Version': '1.0',
      'Content-Type': 'multipart/mixed; boundary="b"',
    },
    [
      '--b',
      'Content-Type: text/plain',
      '',
      'See attached.',
      '--b',
      'Content-Type: application/octet-stream; name="blob.bin"',
      'Content-Disposition: attachment; filename="blob.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n'),
      '--b--',
      '',
    ].join('\r\n'),
  );
}

/** A message mailparser gives up on: an attachment, then more MIME parts than it allows. */
function unparseable(): string {
  const parts = [
    '--b',
    'Content-Type: application/octet-stream; name="first.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    bytesOf(3000).toString('base64'),
  ];
  for (let i = 0; i < 1001; i++) {
    parts.push('--b', 'Content-Type: text/plain', '', `part ${i}`);
  }
  return makeMessage(
    {
      From: 'jane@example.net',
      To: 'support@example.com',
      Subject: 'too many parts',
      'Message-ID': '<broken@example.net>',
      'MIME-Version': '1.0',
      'Content-Type': 'multipart/mixed; boundary="b"',
    },
    [...parts, '--b--', ''].join('\r\n'),
  );
}

const FIVE_MIB = 5 * 1024 * 1024;
const ROUTES = [{ match: 'support@example.com', mailbox_id: 'mb-support' }];

describe('attachments through spool tmp/ files', () => {
  const t = useBridge();
  /** what spool tmp/ held while each request was being answered */
  let tmpAtRequest: string[][];
  /** the answer to every request (204 when unset) */
  let answer: FakeReply | undefined;

  beforeEach(() => {
    tmpAtRequest = [];
    answer = undefined;
    t.api.respondWith(() => {
      const bridge = t.bridges.at(-1);
      if (bridge) tmpAtRequest.push(readdirSync(tmpOf(bridge)));
      return answer;
    });
  });

  function tmpOf(b: TestBridge): string {
    return join(b.spoolDir, 'tmp');
  }

  async function start(mode: 'queue' | 'sync'): Promise<TestBridge> {
    return t.start({
      api: apiAt(t.api.url, { timeoutMs: 10_000 }),
      routes: ROUTES,
      // one attempt per test: a deferred message is not retried within it
      delivery: {
        mode,
        retry: { initialDelayMs: 600_000, maxDelayMs: 600_000 },
      },
    });
  }

  /** The attachment of the first request, decoded, and the request's Content-Length. */
  function received(): { bytes: Buffer; contentLength: number; json: number } {
    const request = t.api.requests[0]!;
    const attachments = request.body.attachments as Array<{
      name: string;
      file: string;
    }>;
    expect(attachments.map(a => a.name)).to.deep.equal(['blob.bin']);
    return {
      bytes: Buffer.from(attachments[0]!.file, 'base64'),
      contentLength: Number(request.headers['content-length']),
      json: Buffer.byteLength(JSON.stringify(request.body)),
    };
  }

  for (const mode of ['queue', 'sync'] as const) {
    it(`${mode} mode: a 5 MiB attachment arrives intact, with an exact Content-Length`, async () => {
      const b = await start(mode);
      const bytes = bytesOf(FIVE_MIB);
      const result = await sendRaw({
        port: b.smtpPort,
        to: ['support@example.com'],
        raw: withAttachment(bytes, `big-${mode}`),
      });
      expect(result.code, result.response).to.equal(250);
      await t.api.waitForRequests(1);
      if (mode === 'queue') {
        await b.waitForLog(l => l.message === 'message delivered');
      }
      const got = received();
      expect(got.bytes.length).to.equal(FIVE_MIB);
      expect(sha256(got.bytes)).to.equal(sha256(bytes));
      expect(got.contentLength).to.equal(got.json);
      expect(t.api.requests[0]!.headers).to.not.have.property(
        'transfer-encoding',
      );
      // the attachment was a file in spool tmp/ while it was posted, and is gone now
      expect(tmpAtRequest[0]?.filter(n => n.endsWith('.bin'))).to.have.length(
        1,
      );
      expect(await readdir(tmpOf(b))).to.deep.equal([]);
    });
  }

  describe('queue mode: the files are gone after each kind of attempt', () => {
    const rows: Array<{
      title: string;
      reply?: FakeReply;
      raw: string;
      log: string;
      requests: number;
    }> = [
      {
        title: 'delivered (204)',
        reply: { status: 204 },
        raw: withAttachment(bytesOf(100_000), 'q-ok'),
        log: 'message delivered',
        requests: 1,
      },
      {
        title: 'failed (500), to be retried',
        reply: { status: 500 },
        raw: withAttachment(bytesOf(100_000), 'q-500'),
        log: 'delivery deferred',
        requests: 1,
      },
      {
        title: 'refused (400), dead',
        reply: {
          status: 400,
          body: { errors: [{ code: 'invalid', message: 'no' }] },
        },
        raw: withAttachment(bytesOf(100_000), 'q-400'),
        log: 'message dead',
        requests: 1,
      },
    ];
    // a structure the parser cannot take is refused at the end of DATA now (issue 16): nothing
    // is spooled, so no attempt and no attachment file
    it('unparseable: refused at the end of DATA, nothing left in tmp/', async () => {
      const b = await start('queue');
      const result = await sendRaw({
        port: b.smtpPort,
        to: ['support@example.com'],
        raw: unparseable(),
      });
      expect(result.response).to.match(/^554 5\.6\.0 /);
      expect(t.api.requests).to.have.length(0);
      expect(await readdir(tmpOf(b))).to.deep.equal([]);
    });
    for (const row of rows) {
      it(row.title, async () => {
        const b = await start('queue');
        answer = row.reply;
        const result = await sendRaw({
          port: b.smtpPort,
          to: ['support@example.com'],
          raw: row.raw,
        });
        expect(result.code, result.response).to.equal(250);
        const line: Line = await b.waitForLog(l => l.message === row.log);
        expect(line.level).to.be.oneOf(['info', 'warn']);
        expect(t.api.requests).to.have.length(row.requests);
        if (row.requests) {
          expect(
            tmpAtRequest[0]?.filter(n => n.endsWith('.bin')),
          ).to.have.length(1);
        }
        expect(await readdir(tmpOf(b))).to.deep.equal([]);
      });
    }
  });

  describe('sync mode: the files are gone before the reply', () => {
    const rows: Array<{
      title: string;
      reply?: FakeReply;
      raw: string;
      code: number;
      requests: number;
    }> = [
      {
        title: 'delivered (204) -> 250',
        reply: { status: 204 },
        raw: withAttachment(bytesOf(100_000), 's-ok'),
        code: 250,
        requests: 1,
      },
      {
        title: 'failed (500) -> 451',
        reply: { status: 500 },
        raw: withAttachment(bytesOf(100_000), 's-500'),
        code: 451,
        requests: 1,
      },
      {
        title: 'refused (400) -> 554',
        reply: { status: 400 },
        raw: withAttachment(bytesOf(100_000), 's-400'),
        code: 554,
        requests: 1,
      },
      {
        title: 'unparseable -> 554 without a post',
        raw: unparseable(),
        code: 554,
        requests: 0,
      },
    ];
    for (const row of rows) {
      it(row.title, async () => {
        const b = await start('sync');
        answer = row.reply;
        const result = await sendRaw({
          port: b.smtpPort,
          to: ['support@example.com'],
          raw: row.raw,
        });
        expect(result.code, result.response).to.equal(row.code);
        expect(t.api.requests).to.have.length(row.requests);
        expect(await readdir(tmpOf(b))).to.deep.equal([]);
      });
    }
  });
});
