// Corpus messages of threads, senders and lying labels: the fields that matter, as posted.
import { expect } from 'chai';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { payloadToString } from '../../src/api/payload-stream.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import { buildPayloads } from '../../src/pipeline/build-payloads.js';

const CORPUS = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

const CONFIG: Config = loadConfig({
  env: { NODE_ENV: 'test' },
  overrides: { routes: [{ match: '*' }] },
});

/** The one body (as posted) a corpus file gives for the catch-all route. */
async function bodyOf(file: string): Promise<ApiPayload<string>> {
  const message = await parseMessage(join(CORPUS, file));
  try {
    const bodies = buildPayloads(
      message,
      {
        id: 'corpus',
        mailFrom: 'sender@example.net',
        rcptTo: ['support@example.com'],
        receivedAt: '2026-01-01T00:00:00.000Z',
      },
      CONFIG,
    );
    expect(bodies).to.have.length(1);
    return JSON.parse(
      await payloadToString(bodies[0]!.payload),
    ) as ApiPayload<string>;
  } finally {
    await message.dispose();
  }
}

describe('corpus: lying charset labels', () => {
  it('charsets/spamscope-mail_test_12: a UTF-8 body labelled GB2312 is UTF-8', async () => {
    const body = await bodyOf('charsets/spamscope-mail_test_12.eml');
    expect(body.content).to.include('你好！我公司可代开各类增值税发票');
    expect(body.content).to.not.include('浣犲ソ');
    expect(body.subject).to.equal('代开各地增值税发票');
  });

  it('charsets/mikelmail-content_transfer_encoding_empty: double-encoded Big5 subject and body', async () => {
    const body = await bodyOf(
      'charsets/mikelmail-content_transfer_encoding_empty.eml',
    );
    expect(body.subject).to.equal(
      '4d8119\u3000(大補泡麵專賣) 大家說英語 每日聽MP3 (2004年6月份) 繁體中文光碟版 (英語教學)\u30008afb90',
    );
    expect(body.content).to.include('Yahoo! 工具列');
  });
});

describe('corpus: yEnc in a text part', () => {
  it('plain/mimekit-simple: the yEnc file is an attachment, the text a note, not binary', async () => {
    const body = await bodyOf('plain/mimekit-simple.eml');
    expect(body.attachments?.map(a => a.name)).to.deep.equal(['testfile.txt']);
    const file = Buffer.from(body.attachments![0]!.file, 'base64');
    expect(file.length).to.equal(584);
    // the =yend line's crc32=ded29f4f
    expect(crc32(file)).to.equal(0xded29f4f);
    expect(body.content).to.include(
      '[mailbridge: a yEnc-encoded file (&quot;testfile.txt&quot;, 584 bytes) is attached]',
    );
    expect(body.content).to.not.include('\ufffd');
    expect(body.content).to.not.include('=ybegin');
  });
});

describe('corpus: threads and senders', () => {
  const rows: Array<{ file: string; expected: Partial<ApiPayload<string>> }> = [
    {
      // References: <baz@bar.net>, <invalid.\n something@bar.net> (a broken fold)
      file: 'headers-edge/mikelmail-multiple_references_with_one_invalid.eml',
      expected: {
        ext_msg_id: '<105647271315.NCV17523@x263.net>',
        reply_to_ext_msg_id: '<baz@bar.net>',
      },
    },
  ];
  for (const { file, expected } of rows) {
    it(file, async () => {
      const body = await bodyOf(file);
      for (const [key, value] of Object.entries(expected)) {
        expect(body[key], key).to.deep.equal(value);
      }
    });
  }
});
