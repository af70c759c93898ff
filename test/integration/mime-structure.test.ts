// Issue 16: a message the parser cannot take (too many MIME parts, nested too deep, a header
// block too large) is refused at the end of DATA with 554 5.6.0, never accepted and then dead;
// ordinary multipart mail still goes through.
import { expect } from 'chai';
import { once } from 'node:events';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { attachmentPart, multipartMessage, textPart } from '../helpers/mime.js';
import { listSpool } from '../helpers/queue-tools.js';
import { sendRaw } from '../helpers/smtp-client.js';

const HEADERS = {
  From: 'jane@example.net',
  To: 'support@example.com',
  Subject: 'structure',
  'Message-ID': '<structure@example.net>',
};

/** 1001 parts, the message counted (mailparser takes 1000). */
const TOO_MANY_PARTS = multipartMessage(
  HEADERS,
  Array.from({ length: 1000 }, (_, i) => textPart(`part ${i}`)),
);

/** 1000 nested multiparts, as in the report (about 68 KB). */
function tooDeep(): string {
  let body = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
  for (let level = 1000; level >= 1; level--) {
    body = `Content-Type: multipart/mixed; boundary=n${level}\r\n\r\n--n${level}\r\n${body}--n${level}--\r\n`;
  }
  const head = Object.entries(HEADERS).map(([k, v]) => `${k}: ${v}\r\n`);
  return head.join('') + body;
}

/** A header block over 1 MiB: 17,000 short header lines. */
const HEADER_TOO_LARGE =
  Object.entries(HEADERS)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('') +
  'X-Filler: 1\r\n'.repeat(17_000) +
  '\r\nHello.\r\n';

describe('MIME structure refused at the end of DATA (issue 16)', function () {
  this.timeout(20_000);
  const t = useBridge();

  const start = (mode: 'queue' | 'sync' = 'queue') =>
    t.start({
      delivery: { mode, scanIntervalMs: 100 },
      api: apiAt(t.api.url),
      routes: [{ match: 'support@example.com', mailbox_id: 'mb-support' }],
    });

  const shapes = [
    {
      name: 'over 1000 MIME parts',
      raw: TOO_MANY_PARTS,
      text: 'more than 1000 MIME parts',
    },
    {
      name: '1000 nested multiparts',
      raw: tooDeep(),
      text: 'MIME parts nested more than 100 levels deep',
    },
    {
      name: 'a header block over 1 MiB',
      raw: HEADER_TOO_LARGE,
      text: 'a header block over 1024 KiB',
    },
  ];

  for (const shape of shapes) {
    it(`${shape.name}: 554 5.6.0 at the end of DATA, nothing spooled or posted`, async () => {
      const bridge = await start();
      const result = await sendRaw({
        port: bridge.smtpPort,
        to: ['support@example.com'],
        raw: shape.raw,
      });
      expect(result.code, result.response).to.equal(554);
      expect(result.response).to.match(
        new RegExp(`^554 5\\.6\\.0 Message structure refused: ${shape.text}$`),
      );
      const line = await bridge.waitForLog(l => l.outcome === 'rejected');
      expect(line).to.include({ code: 554, messageId: HEADERS['Message-ID'] });
      // give a queue runner time to post anything it had been handed
      await new Promise(resolve => setTimeout(resolve, 300));
      expect(t.api.requests).to.deep.equal([]);
      expect(await listSpool(bridge.spoolDir)).to.deep.equal({
        tmp: [],
        msg: [],
        queue: [],
        active: [],
        dead: [],
      });
    });
  }

  it('sync mode refuses the same way', async () => {
    const bridge = await start('sync');
    const result = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw: TOO_MANY_PARTS,
    });
    expect(result.response).to.match(
      /^554 5\.6\.0 Message structure refused: /,
    );
    expect(t.api.requests).to.deep.equal([]);
  });

  it('an ordinary multipart message is still accepted and posted', async () => {
    const bridge = await start();
    const posted = once(t.api, 'request');
    const result = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw: multipartMessage(HEADERS, [
        textPart('Hello with an attachment.'),
        attachmentPart('notes.txt', 'x'.repeat(200_000)),
      ]),
    });
    expect(result.code, result.response).to.equal(250);
    await posted;
    expect(t.api.requests).to.have.length(1);
    const body = t.api.requests[0]!.body as {
      attachments?: Array<{ name: string }>;
    };
    expect(body.attachments?.map(a => a.name)).to.deep.equal(['notes.txt']);
  });
});
