// A client that pipelines QUIT behind its final dot and half-closes its side at once (TCP FIN),
// as Exim's smtp transport does, still hears the 250 and the 221: found by the Exim interop
// test (mta-exim), where the 250 of a stored message was lost and Exim sent it again.
import { expect } from 'chai';
import { once } from 'node:events';
import { connect } from 'node:net';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage } from '../helpers/smtp-client.js';

describe('a client that half-closes after its pipelined QUIT (as Exim does)', function () {
  this.timeout(10_000);
  const t = useBridge();

  for (const lmtp of [false, true]) {
    it(`gets its reply to the message and to QUIT (${lmtp ? 'LMTP' : 'SMTP'})`, async () => {
      const bridge = await t.start({
        api: apiAt(t.api.url),
        smtp: { lmtp },
        routes: [{ match: 'support@example.com', mailbox_id: 'mb-support' }],
      });
      const socket = connect(bridge.smtpPort, '127.0.0.1');
      socket.setEncoding('utf8');
      let text = '';
      socket.on('data', (chunk: string) => (text += chunk));
      const until = async (pattern: RegExp) => {
        while (!pattern.test(text)) await once(socket, 'data');
      };
      await until(/^220 /m);
      socket.write(
        `${lmtp ? 'LHLO' : 'EHLO'} mta.test\r\nMAIL FROM:<jane@example.net>\r\n` +
          'RCPT TO:<support@example.com>\r\nDATA\r\n',
      );
      await until(/^354 /m);
      text = '';
      socket.end(
        `${makeMessage({ From: 'jane@example.net', Subject: 'half-closed' })}.\r\nQUIT\r\n`,
      );
      await once(socket, 'close');
      expect(text).to.match(/^250 /m);
      expect(text).to.match(/^221 /m);
      await t.api.waitForRequests(1);
    });
  }
});
