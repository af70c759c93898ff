// SMTP AUTH on the running daemon (smtp.auth): offered with accounts and over TLS only, good
// and bad credentials, AUTH required before MAIL FROM, and passwords kept out of the logs.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw, smtpDialog } from '../helpers/smtp-client.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const TLS = {
  key: `${FIXTURES}localhost.key`,
  cert: `${FIXTURES}localhost.crt`,
};
const CA = readFileSync(TLS.cert);
const USERS = [
  { username: 'forwarder', password: 'correct horse battery' },
  { username: 'other', password: 'another-long-secret' },
];

describe('SMTP AUTH', () => {
  const t = useBridge();

  async function start(smtp: Record<string, unknown>): Promise<number> {
    const bridge = await t.start({
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url),
      smtp: smtp as Record<string, never>,
    });
    return bridge.smtpPort;
  }

  /** Sends one message over STARTTLS, logging in as `user` when given; the reply code. */
  async function send(
    port: number,
    user?: { user: string; pass: string },
  ): Promise<number> {
    const { code } = await sendRaw({
      port,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'jane@example.net',
        Subject: `auth ${user?.user ?? 'none'}`,
      }),
      transport: {
        ignoreTLS: false,
        requireTLS: true,
        tls: { ca: [CA], servername: 'localhost' },
        ...(user ? { auth: user } : {}),
      },
    });
    return code;
  }

  it('offers no AUTH without accounts', async () => {
    const port = await start({ tls: TLS });
    const [, ehlo] = await smtpDialog(port, [
      'EHLO client.example.net',
      'QUIT',
    ]);
    expect(ehlo).to.not.match(/AUTH/);
  });

  it('refuses AUTH before STARTTLS with 538 5.7.0, and takes good credentials over it', async () => {
    const port = await start({ tls: TLS, auth: { users: USERS } });
    const plain = Buffer.from('\0forwarder\0correct horse battery').toString(
      'base64',
    );
    const replies = await smtpDialog(port, [
      'EHLO client.example.net',
      `AUTH PLAIN ${plain}`,
      'QUIT',
    ]);
    expect(replies[1]).to.match(/STARTTLS/);
    expect(replies[2]).to.match(/^538 5\.7\.0 .*STARTTLS/);
    expect(
      await send(port, { user: 'forwarder', pass: 'correct horse battery' }),
    ).to.equal(250);
    expect(
      await send(port, { user: 'other', pass: 'another-long-secret' }),
    ).to.equal(250);
    expect(t.api.requests).to.have.length(2);
    const { values } = await t.bridge.daemon.metrics.authentications.get();
    const counted = values.filter(v => v.value);
    expect(counted.map(v => [v.labels.result, v.value])).to.deep.equal([
      ['success', 2],
    ]);
  });

  it('refuses bad credentials with 535 5.7.8, logs the user but never the password', async () => {
    const port = await start({ tls: TLS, auth: { users: USERS } });
    const cases: Array<{ user: string; pass: string }> = [
      { user: 'forwarder', pass: 'wrong password here' },
      // one account's password with another's name
      { user: 'forwarder', pass: 'another-long-secret' },
      { user: 'nobody', pass: 'correct horse battery' },
    ];
    for (const user of cases) {
      expect(await send(port, user), user.user).to.equal(535);
    }
    expect(t.api.requests).to.have.length(0);
    const failed = t.bridge.logs.filter(
      l => l.message === 'authentication failed',
    );
    expect(failed.map(l => l.username)).to.deep.equal([
      'forwarder',
      'forwarder',
      'nobody',
    ]);
    const logged = JSON.stringify(t.bridge.logs);
    for (const secret of [
      'wrong password here',
      'another-long-secret',
      'correct horse battery',
    ]) {
      expect(logged).to.not.include(secret);
      // nor base64-encoded, as AUTH PLAIN carries it
      expect(logged).to.not.include(
        Buffer.from(secret).toString('base64').slice(0, 12),
      );
    }
  });

  it('with smtp.auth.required refuses MAIL FROM before AUTH with 530 5.7.0', async () => {
    const port = await start({
      tls: TLS,
      auth: { users: USERS, required: true },
    });
    expect(await send(port)).to.equal(530);
    expect(
      await send(port, { user: 'forwarder', pass: 'correct horse battery' }),
    ).to.equal(250);
    expect(t.api.requests).to.have.length(1);
  });

  it('with smtp.auth.allowInsecure offers AUTH in clear, and AUTH PLAIN works there', async () => {
    const port = await start({
      auth: { users: USERS, allowInsecure: true, required: true },
    });
    const plain = Buffer.from('\0forwarder\0correct horse battery').toString(
      'base64',
    );
    const replies = await smtpDialog(port, [
      'EHLO client.example.net',
      'MAIL FROM:<jane@example.net>',
      `AUTH PLAIN ${plain}`,
      'MAIL FROM:<jane@example.net>',
      'QUIT',
    ]);
    expect(replies[1]).to.match(/^250[ -]AUTH PLAIN LOGIN$/m);
    expect(replies[2]).to.equal('530 5.7.0 Authentication required');
    expect(replies[3]).to.match(/^235 2\.7\.0 /);
    expect(replies[4]).to.match(/^250 /);
  });
});
