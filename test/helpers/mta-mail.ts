// The mail of the MTA interop tests (mta-postfix, mta-exim): one message with every kind of
// field and a binary attachment, the check of what the stand-in API received for it, and a
// bounded wait for the API's requests.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { FakeApi, RecordedRequest } from './fake-api.js';
import { waitFor } from './wait-for.js';

/** The relayed domain, and its two routes. */
export const DOMAIN = 'help.example.com';
export const ROUTES = [
  { match: `support@${DOMAIN}`, mailbox_id: 'mb-support' },
  { match: `billing@${DOMAIN}`, mailbox_id: 'mb-billing' },
];

/** Every byte value, then random ones: nothing on the way may touch a byte. */
export function binaryAttachment(): Buffer {
  return Buffer.concat([
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    randomBytes(4000),
  ]);
}

/** A message to support@ (To) and billing@ (Cc): a UTF-8 subject, 8-bit text, `attachment`. */
export function messageWithAttachment(attachment: Buffer): string {
  const base64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  const subject = Buffer.from('Drucker kaputt – Ärger').toString('base64');
  return [
    'From: Jane Doe <jane@customer.example>',
    `To: support@${DOMAIN}`,
    `Cc: billing@${DOMAIN}`,
    `Subject: =?UTF-8?B?${subject}?=`,
    'Message-ID: <interop-1@customer.example>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'The printer says: Ärger.',
    '--b1',
    'Content-Type: application/octet-stream; name="report.bin"',
    'Content-Disposition: attachment; filename="report.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    base64,
    '--b1--',
    '',
  ].join('\r\n');
}

/** Checks the two posts (one per route) of messageWithAttachment(attachment). */
export function expectPosts(
  requests: RecordedRequest[],
  attachment: Buffer,
): void {
  const byMailbox = new Map(requests.map(r => [r.body.mailbox_id, r.body]));
  expect([...byMailbox.keys()].sort()).to.deep.equal([
    'mb-billing',
    'mb-support',
  ]);
  for (const body of byMailbox.values()) {
    expect(body.from).to.equal('jane@customer.example');
    expect(body.to).to.equal(`support@${DOMAIN}`);
    expect(body.cc).to.equal(`billing@${DOMAIN}`);
    expect(body.subject).to.equal('Drucker kaputt – Ärger');
    expect(body.ext_msg_id).to.equal('<interop-1@customer.example>');
    expect(body.content).to.contain('The printer says: Ärger.');
    const files = body.attachments as Array<{ name: string; file: string }>;
    expect(files.map(f => f.name)).to.deep.equal(['report.bin']);
    expect(Buffer.from(files[0]!.file, 'base64').equals(attachment)).to.equal(
      true,
      'the attachment arrived byte for byte',
    );
  }
}

/** Resolves once the API has recorded `count` requests (bounded; `context()` in the error). */
export function waitForPosts(
  api: FakeApi,
  count: number,
  context: () => string,
): Promise<void> {
  return waitFor(() => api.requests.length >= count, [[api, 'request']], {
    timeoutMs: 20_000,
    what: `${count} posts to the API`,
    describe: () =>
      `${api.requests.length} so far; the MTA's log: ${context()}`,
  });
}
