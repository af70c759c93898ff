// A rotated api.token (SIGHUP, Daemon.reload): POSTs that start after the reload carry the new
// token, from the post thread (whole attempts as jobs) and from the main thread alike; the
// thread's old worker is retired once its requests are answered.
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load-config.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

const OLD = 'old-token-4d2a';
const NEW = 'new-token-9c71';

function message(n: number): string {
  return makeMessage({
    From: 'jane@example.net',
    To: 'support@example.com',
    Subject: `token ${n}`,
    'Message-ID': `<token-${n}@example.net>`,
  });
}

describe('a rotated api.token', () => {
  const t = useBridge();

  for (const workerThread of [true, false]) {
    it(`is carried by every POST after the reload (${workerThread ? 'post thread' : 'main thread'})`, async () => {
      const bridge = await t.start({
        api: apiAt(t.api.url, { token: OLD, workerThread }),
      });
      const send = async (n: number) => {
        const sent = await sendRaw({
          port: bridge.smtpPort,
          to: ['support@example.com'],
          raw: message(n),
        });
        expect(sent.code, sent.response).to.equal(250);
        await t.api.waitForRequests(n);
      };
      await send(1);
      const result = bridge.daemon.reload(() =>
        loadConfig({
          env: { NODE_ENV: 'test' },
          overrides: {
            ...(structuredClone(bridge.config) as unknown as object),
            api: { ...bridge.config.api, token: NEW },
          } as never,
        }),
      );
      expect(result).to.deep.equal({
        reloaded: true,
        applied: ['api.token'],
        needsRestart: [],
      });
      await send(2);
      await send(3);
      expect(t.api.requests.map(r => r.headers.authorization)).to.deep.equal([
        `Bearer ${OLD}`,
        `Bearer ${NEW}`,
        `Bearer ${NEW}`,
      ]);
      const lines = JSON.stringify(bridge.logs);
      expect(lines).not.to.include(NEW);
    });
  }
});
