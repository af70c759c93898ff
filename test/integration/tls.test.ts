// TLS on the running daemon: STARTTLS with the operator's certificate, implicit TLS, TLS
// required before MAIL FROM, the oldest version accepted, and files that cannot be used.
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors/bridge-error.js';
import { loadServerTls } from '../../src/smtp/server-tls.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw, smtpDialog } from '../helpers/smtp-client.js';

// a self-signed certificate for localhost and 127.0.0.1, for these tests only
const FIXTURES = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const KEY = join(FIXTURES, 'localhost.key');
const CERT = join(FIXTURES, 'localhost.crt');
const CA = readFileSync(CERT);

type TlsConfig = Config['smtp']['tls'];

describe('TLS', () => {
  const t = useBridge();

  async function start(tls: Partial<TlsConfig>): Promise<number> {
    const bridge = await t.start({
      delivery: { mode: 'sync' },
      api: apiAt(t.api.url),
      smtp: { tls },
    });
    return bridge.smtpPort;
  }

  /** Sends one message, trusting the test certificate; resolves with the reply code. */
  async function send(
    port: number,
    options: { secure?: boolean; requireTLS?: boolean; ignoreTLS?: boolean },
    subject: string,
  ): Promise<number> {
    const { code } = await sendRaw({
      port,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: subject }),
      transport: {
        tls: { ca: [CA], servername: 'localhost' },
        ignoreTLS: false,
        ...options,
      },
    });
    return code;
  }

  it('offers no STARTTLS without a key and certificate', async () => {
    const port = await start({});
    const [, ehlo] = await smtpDialog(port, [
      'EHLO client.example.net',
      'QUIT',
    ]);
    expect(ehlo).to.not.include('STARTTLS');
  });

  it('offers STARTTLS with smtp.tls.key and cert, and takes mail over it', async () => {
    const port = await start({ key: KEY, cert: CERT });
    const [, ehlo] = await smtpDialog(port, [
      'EHLO client.example.net',
      'QUIT',
    ]);
    expect(ehlo).to.match(/^250[ -]STARTTLS$/m);
    // requireTLS: nodemailer fails unless the upgrade happens, and checks our certificate
    expect(await send(port, { requireTLS: true }, 'over starttls')).to.equal(
      250,
    );
    expect(t.api.requests.map(r => r.body.subject)).to.deep.equal([
      'over starttls',
    ]);
    // a client that does not upgrade is still served (required is false by default)
    expect(await send(port, { ignoreTLS: true }, 'in clear')).to.equal(250);
  });

  it('with smtp.tls.required refuses MAIL FROM before STARTTLS with 530 5.7.0', async () => {
    const port = await start({ key: KEY, cert: CERT, required: true });
    const replies = await smtpDialog(port, [
      'EHLO client.example.net',
      'MAIL FROM:<jane@example.net>',
      'QUIT',
    ]);
    expect(replies[2]).to.equal(
      '530 5.7.0 Must issue a STARTTLS command first',
    );
    expect(await send(port, { ignoreTLS: true }, 'in clear')).to.equal(530);
    expect(await send(port, { requireTLS: true }, 'upgraded')).to.equal(250);
    expect(t.api.requests.map(r => r.body.subject)).to.deep.equal(['upgraded']);
  });

  it('with smtp.tls.implicit speaks TLS from the first byte, without STARTTLS', async () => {
    const port = await start({ key: KEY, cert: CERT, implicit: true });
    expect(await send(port, { secure: true }, 'implicit')).to.equal(250);
    expect(t.api.requests.map(r => r.body.subject)).to.deep.equal(['implicit']);
    const socket = tlsConnect({
      port,
      host: '127.0.0.1',
      ca: [CA],
      servername: 'localhost',
    });
    socket.setEncoding('utf8');
    let text = '';
    while (!/^220 /m.test(text)) {
      text += ((await once(socket, 'data')) as [string])[0];
    }
    socket.write('EHLO client.example.net\r\n');
    while (!/^250 /m.test(text)) {
      text += ((await once(socket, 'data')) as [string])[0];
    }
    socket.destroy();
    expect(text).to.not.include('STARTTLS');
  });

  it('refuses a handshake below smtp.tls.minVersion', async () => {
    const port = await start({
      key: KEY,
      cert: CERT,
      implicit: true,
      minVersion: 'TLSv1.3',
    });
    const socket = tlsConnect({
      port,
      host: '127.0.0.1',
      ca: [CA],
      servername: 'localhost',
      maxVersion: 'TLSv1.2',
    });
    const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).to.match(/ERR_SSL|EPROTO|ECONNRESET/);
    expect(await send(port, { secure: true }, 'tls 1.3')).to.equal(250);
  });

  describe('loadServerTls', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'mailbridge-tls-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const base: TlsConfig = {
      key: null,
      cert: null,
      implicit: false,
      required: false,
      minVersion: 'TLSv1.2',
    };

    it('is undefined without files, and reads both with them', () => {
      expect(loadServerTls(base)).to.equal(undefined);
      const tls = loadServerTls({
        ...base,
        key: KEY,
        cert: CERT,
        implicit: true,
      });
      expect(tls?.cert.equals(CA)).to.equal(true);
      expect(tls).to.include({ secure: true, minVersion: 'TLSv1.2' });
    });

    it('names the file that cannot be read', () => {
      expect(() =>
        loadServerTls({ ...base, key: KEY, cert: join(dir, 'missing.crt') }),
      )
        .to.throw(ConfigError)
        .with.property(
          'message',
          `smtp.tls.cert: cannot read ${join(dir, 'missing.crt')} (ENOENT)`,
        );
    });

    it("refuses a key that is not the certificate's", () => {
      const other = join(dir, 'other.key');
      const { privateKey } = generateKeyPairSync('ec', {
        namedCurve: 'prime256v1',
      });
      writeFileSync(other, privateKey.export({ type: 'pkcs8', format: 'pem' }));
      expect(() => loadServerTls({ ...base, key: other, cert: CERT }))
        .to.throw(ConfigError)
        .with.property('message')
        .that.matches(/^smtp\.tls: the key and certificate cannot be used: /);
    });

    it('refuses a file that is not PEM', () => {
      const junk = join(dir, 'junk.key');
      writeFileSync(junk, 'not a key\n');
      expect(() => loadServerTls({ ...base, key: junk, cert: CERT })).to.throw(
        ConfigError,
        /^smtp\.tls: the key and certificate cannot be used/,
      );
    });
  });
});
