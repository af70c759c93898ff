// A stranger who sends first with the Message-ID of a message still on its way must not make
// the genuine message a "duplicate": dedupe matches the sender and the content too. The same
// message relayed along another path is still recognised.
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

const ID = '<thread-42@example.net>';

function genuine(body = 'Our real question.\r\n'): string {
  return makeMessage(
    {
      From: 'Jane <jane@example.net>',
      To: 'support@example.com',
      Subject: 'Re: order 42',
      'Message-ID': ID,
    },
    body,
  );
}

const FORGED = makeMessage(
  {
    From: 'mallory@example.org',
    To: 'support@example.com',
    Subject: 'Re: order 42',
    'Message-ID': ID,
  },
  'Please send the refund to my account.\r\n',
);

/** The genuine message as it arrives along another path: one more trace header, a space lost. */
const RELAYED = `Received: from relay.example.org by mx.example.com\r\n${genuine('Our real question. \r\n\r\n')}`;

/** More than 128 KiB: received into a file of its own rather than the journal. */
const LARGE_BODY = `${'y'.repeat(998)}\r\n`.repeat(140);

for (const mode of ['queue', 'sync'] as const) {
  describe(`dedupe in ${mode} mode: a reused Message-ID does not poison`, () => {
    const t = useBridge();

    const start = () =>
      t.start({
        delivery: { mode, scanIntervalMs: 100 },
        api: apiAt(t.api.url),
        routes: [{ match: 'support@example.com', mailbox_id: 'mb-support' }],
      });

    /** Sends `raw`; in queue mode waits for its outcome line. Returns that line's message. */
    async function send(bridge: TestBridge, raw: string): Promise<string> {
      const result = await sendRaw({
        port: bridge.smtpPort,
        to: ['support@example.com'],
        raw,
      });
      expect(result.code, result.response).to.equal(250);
      if (mode === 'sync') return 'message delivered';
      const id = queueIdOf(result.response);
      const line = await bridge.waitForLog(
        l =>
          l.stage === 'deliver' &&
          l.queueId === id &&
          typeof l.message === 'string' &&
          l.message.startsWith('message '),
      );
      return String(line.message);
    }

    it('posts the genuine message after a forged one with its Message-ID', async () => {
      const bridge = await start();
      expect(await send(bridge, FORGED)).to.equal('message delivered');
      expect(await send(bridge, genuine())).to.equal('message delivered');
      expect(t.api.requests.map(r => r.body.from)).to.deep.equal([
        'mallory@example.org',
        'jane@example.net',
      ]);
      expect(String(t.api.requests[1]?.body.content)).to.include(
        'Our real question.',
      );
    });

    it('posts a large genuine message after a forged one with its Message-ID', async () => {
      const bridge = await start();
      await send(bridge, FORGED);
      await send(bridge, genuine(LARGE_BODY));
      expect(t.api.requests.map(r => r.body.from)).to.deep.equal([
        'mallory@example.org',
        'jane@example.net',
      ]);
    });

    it('posts the same message relayed along another path once', async () => {
      const bridge = await start();
      await send(bridge, genuine());
      await send(bridge, RELAYED);
      await send(bridge, genuine());
      expect(t.api.requests).to.have.length(1);
      expect(t.api.requests[0]?.body.from).to.equal('jane@example.net');
    });

    it('posts two messages of one sender without a Message-ID, the same body, another subject', async () => {
      const bridge = await start();
      for (const subject of ['first', 'second']) {
        await send(
          bridge,
          makeMessage(
            {
              From: 'jane@example.net',
              To: 'support@example.com',
              Subject: subject,
            },
            'Hello.\r\n',
          ),
        );
      }
      expect(t.api.requests.map(r => r.body.subject)).to.deep.equal([
        'first',
        'second',
      ]);
    });

    it('posts the same sender with another body under the same Message-ID', async () => {
      const bridge = await start();
      await send(bridge, genuine());
      await send(bridge, genuine('A corrected question.\r\n'));
      expect(t.api.requests).to.have.length(2);
    });
  });
}
