// Issue 16, through the real daemon: header-derived fields without control characters, safe
// attachment names, remote images blocked. Real SMTP in, the JSON the API received out.
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

type Body = Record<string, unknown>;

/** Every string value anywhere in a JSON value, with its path. */
function stringsIn(value: unknown, path = '$'): Array<[string, string]> {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => stringsIn(v, `${path}[${i}]`));
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) =>
      stringsIn(v, `${path}.${k}`),
    );
  }
  return [];
}

// eslint-disable-next-line no-control-regex -- what no header-derived value may carry
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe('body posted: hostile headers, names and images (issue 16)', () => {
  const t = useBridge();

  /** A fresh daemon posting to the stand-in API, closed after the test. */
  async function bridgeWith(overrides: Body = {}): Promise<TestBridge> {
    // sync mode: the body is posted before the 250, so each test reads it right away
    return t.start({
      api: apiAt(t.api.url),
      delivery: { mode: 'sync' },
      ...overrides,
    });
  }

  /** Sends one message, expects 250 and returns the one body it posted. */
  async function post(bridge: TestBridge, raw: string): Promise<Body> {
    const before = t.api.requests.length;
    const result = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw,
    });
    expect(result.code, result.response).to.equal(250);
    const requests = await t.api.waitForRequests(before + 1);
    expect(requests).to.have.length(before + 1);
    return requests[before]!.body;
  }

  it('CR/LF from encoded words reach no header-derived field (header injection)', async () => {
    const bridge = await bridgeWith({ mapping: { addressFormat: 'full' } });
    const body = await post(
      bridge,
      makeMessage(
        {
          From: '=?utf-8?q?Jane=0D=0ABcc=3A_victim=40example.net?= <jane@example.com>',
          To: '=?utf-8?q?Sup=0Aport=07?= <support@example.com>',
          Subject: '=?utf-8?q?Invoice=0D=0ABcc:_victim@example.net=00?=',
          'Message-ID': '<m1@example.com>',
          'MIME-Version': '1.0',
          'Content-Type': 'multipart/mixed; boundary="mix"',
        },
        [
          '--mix',
          'Content-Type: text/plain; charset=utf-8',
          '',
          'Line one\r\nline two',
          '--mix',
          'Content-Type: text/plain',
          'Content-Disposition: attachment; filename="=?utf-8?q?a=0D=0Ab.txt?="',
          '',
          'x',
          '--mix--',
          '',
        ].join('\r\n'),
      ),
    );
    expect(body.subject).to.equal('Invoice Bcc: victim@example.net');
    expect(body.from).to.equal(
      '"Jane Bcc: victim@example.net" <jane@example.com>',
    );
    expect(body.to).to.equal('Sup port <support@example.com>');
    expect(body.attachments).to.deep.equal([
      { name: 'ab.txt', file: Buffer.from('x').toString('base64') },
    ]);
    const { content, ...headerDerived } = body;
    expect(content).to.include('<br>');
    expect(
      stringsIn(headerDerived).filter(([, v]) => CONTROL.test(v)),
    ).to.deep.equal([]);
  });

  it('attachment names: bidi overrides removed, 255 bytes at most, the extension kept', async () => {
    const long = `${'x'.repeat(4996)}.pdf`;
    const pieces = long.match(/.{1,200}/g) ?? [];
    const bridge = await bridgeWith();
    const body = await post(
      bridge,
      makeMessage(
        {
          From: 'jane@example.com',
          To: 'support@example.com',
          Subject: 'files',
          'MIME-Version': '1.0',
          'Content-Type': 'multipart/mixed; boundary="mix"',
        },
        [
          '--mix',
          'Content-Type: application/octet-stream',
          "Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEgpj.exe",
          '',
          'MZ',
          '--mix',
          'Content-Type: application/pdf',
          'Content-Disposition: attachment;',
          ...pieces.map(
            (piece, i) =>
              ` filename*${i}="${piece}"${i < pieces.length - 1 ? ';' : ''}`,
          ),
          '',
          '%PDF',
          '--mix--',
          '',
        ].join('\r\n'),
      ),
    );
    const names = (body.attachments as Array<{ name: string }>).map(
      a => a.name,
    );
    expect(names).to.deep.equal(['invoicegpj.exe', `${'x'.repeat(251)}.pdf`]);
  });

  it('remote images: blocked by default (alt text and a link), kept with remoteImages keep', async () => {
    const html = makeMessage(
      {
        From: 'jane@example.com',
        To: 'support@example.com',
        Subject: 'images',
        'MIME-Version': '1.0',
        'Content-Type': 'text/html; charset=utf-8',
      },
      [
        '<p>Hello<img src="https://tracker.example/open.gif?u=42" width="1" height="1">',
        '<img src="https://cdn.example/logo.png" alt="ACME logo">',
        '<img src="cid:sig@example.com" alt="signature">',
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="dot"></p>',
        '',
      ].join('\r\n'),
    );

    const blocked = (await post(await bridgeWith(), html)).content;
    expect(blocked).to.be.a('string');
    expect(blocked).to.include(
      '<a href="https://tracker.example/open.gif?u=42" rel="noopener noreferrer">[image]</a>',
    );
    expect(blocked).to.include(
      '<a href="https://cdn.example/logo.png" rel="noopener noreferrer">[image: ACME logo]</a>',
    );
    // a cid: that names no part of the message is named, not left dangling
    expect(blocked).to.include('[image: signature]');
    expect(blocked).to.not.include('cid:');
    expect(blocked).to.include('<img src="data:image/gif;base64,');
    expect(blocked).to.not.match(/<img\b[^>]*\bsrc="https?:/);

    const keep = await bridgeWith({ mapping: { remoteImages: 'keep' } });
    const kept = (await post(keep, html)).content;
    expect(kept).to.include(
      '<img src="https://tracker.example/open.gif?u=42" width="1" height="1" />',
    );
    expect(kept).to.include(
      '<img src="https://cdn.example/logo.png" alt="ACME logo" />',
    );
  });
});
