// stripQuotedReplies through the running daemon: one reply sent to two routes, posted short on
// the route that strips and whole on the one that does not, in queue and sync mode.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { sendRaw } from '../helpers/smtp-client.js';

/** A Gmail reply: "Hello", then gmail_quote with "On ... wrote:" and the quoted "Hi". */
const REPLY = readFileSync(
  new URL('../fixtures/corpus/threading/talon-gmail.eml', import.meta.url),
);

const ROUTES: Array<Record<string, string | boolean>> = [
  {
    match: 'support@example.com',
    mailbox_id: 'mb-support',
    stripQuotedReplies: true,
  },
  { match: 'archive@example.com', mailbox_id: 'mb-archive' },
];

describe('stripQuotedReplies (daemon)', () => {
  const t = useBridge();

  for (const mode of ['queue', 'sync'] as const) {
    it(`${mode}: the stripping route posts the new text, the other the whole reply`, async () => {
      await t.start({
        delivery: { mode },
        api: apiAt(t.api.url),
        routes: ROUTES,
      });
      const result = await sendRaw({
        port: t.bridge.smtpPort,
        to: ['support@example.com', 'archive@example.com'],
        raw: REPLY,
      });
      expect(result.code, result.response).to.equal(250);
      const requests = await t.api.waitForRequests(2);
      const content = Object.fromEntries(
        requests.map(r => [r.body.mailbox_id, String(r.body.content)]),
      );
      expect(content['mb-support']).to.equal('Hello<br /><br />');
      expect(content['mb-archive']).to.include('Hello');
      expect(content['mb-archive']).to.include('wrote:');
      expect(content['mb-archive']).to.include('<blockquote');
    });
  }
});
