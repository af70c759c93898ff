// The default smtp.maxMessageSize takes the largest attachment Gmail or Outlook sends: a 20 MiB
// file is about 28.7 MB once base64-encoded with its line ends. Under the default
// api.maxBodyBytes (16 MiB) the body is then posted without it, named in content, and the raw
// message is kept in held/ (docs/configuration.md, "Message size").
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { smtpDialog } from '../helpers/smtp-client.js';

const ATTACHMENT_BYTES = 20 * 1024 * 1024;
/** 57 bytes encode to one 76-character base64 line (RFC 2045's longest) */
const LINE_BYTES = 57;

/**
 * A message with one 20 MiB attachment, as a mail client encodes it, made piece by piece as
 * the SMTP client reads it: never one 29 MB string. The bytes are random, so that nothing on
 * the way can compress them away.
 */
function gmailSizedMessage(): { stream: Readable; size: number } {
  const head =
    'From: jane@example.net\r\nTo: support@example.com\r\nSubject: The big scan\r\n' +
    'Message-ID: <big-scan-1@example.net>\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
    '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe scan, attached.\r\n' +
    '--b1\r\nContent-Type: application/pdf; name="scan.pdf"\r\n' +
    'Content-Disposition: attachment; filename="scan.pdf"\r\n' +
    'Content-Transfer-Encoding: base64\r\n\r\n';
  const tail = '--b1--\r\n';
  const lines = Math.ceil(ATTACHMENT_BYTES / LINE_BYTES);
  const encoded =
    Math.ceil(ATTACHMENT_BYTES / 3) * 4 + lines * 2; /* CRLF per line */
  let left = ATTACHMENT_BYTES;
  let sentHead = false;
  const stream = new Readable({
    read() {
      if (!sentHead) {
        sentHead = true;
        this.push(head);
        return;
      }
      if (left === 0) {
        this.push(tail);
        this.push(null);
        return;
      }
      // 1000 lines at a time
      const bytes = randomBytes(Math.min(left, LINE_BYTES * 1000));
      left -= bytes.length;
      let out = '';
      for (let at = 0; at < bytes.length; at += LINE_BYTES) {
        out += `${bytes.subarray(at, at + LINE_BYTES).toString('base64')}\r\n`;
      }
      this.push(out);
    },
  });
  return { stream, size: head.length + encoded + tail.length };
}

describe('default message size', function () {
  // 29 MB through SMTP, the spool and the parser on a loaded machine
  this.timeout(180_000);
  const t = useBridge();

  it('accepts a message with a 20 MiB attachment (~29 MB) under the defaults', async () => {
    const bridge = await t.start({
      api: apiAt(t.api.url, { timeoutMs: 60_000 }),
      routes: [{ match: 'support@example.com', mailbox_id: 'mb-support' }],
    });
    expect(bridge.config.smtp.maxMessageSize).to.equal(40 * 1024 * 1024);
    const [, ehlo] = await smtpDialog(bridge.smtpPort, ['EHLO client', 'QUIT']);
    expect(ehlo).to.include(`SIZE ${40 * 1024 * 1024}`);

    const message = gmailSizedMessage();
    expect(message.size).to.be.within(28_600_000, 29_000_000);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: bridge.smtpPort,
      secure: false,
      ignoreTLS: true,
    });
    let response: string;
    try {
      const info = await transport.sendMail({
        envelope: { from: 'jane@example.net', to: ['support@example.com'] },
        raw: message.stream,
      });
      response = info.response;
    } finally {
      transport.close();
    }
    expect(response).to.match(/^250 2\.6\.0 OK: queued as /);

    // the API side: over the default api.maxBodyBytes, the attachment is left out and named
    const id = queueIdOf(response);
    const line = await bridge.waitForLog(
      l => l.queueId === id && typeof l.attempts === 'number',
    );
    expect(line.outcome).to.equal('held');
    const body = t.api.requests[0]!.body as {
      content: string;
      attachments?: unknown[];
    };
    expect(body.attachments ?? []).to.have.length(0);
    expect(body.content).to.contain('The scan, attached.');
    expect(body.content).to.contain('scan.pdf (20.0 MiB)');
  });
});
