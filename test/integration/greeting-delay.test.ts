// smtp.greetingDelayMs: the greeting waits; a client that talks before it (an early talker, as
// spam engines are) hears 421 and is disconnected, logged and counted as a refusal; a client
// that waits for the greeting is served as usual.
import { expect } from 'chai';
import { once } from 'node:events';
import { connect } from 'node:net';
import { loadConfig } from '../../src/config/load-config.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('smtp.greetingDelayMs', () => {
  const t = useBridge();

  it('a client that talks before the greeting hears 421 and is disconnected', async () => {
    // long enough that the client's first line always comes before it
    const bridge = await t.start({
      api: apiAt(t.api.url),
      smtp: { greetingDelayMs: 30_000 },
    });
    const socket = connect(bridge.smtpPort, '127.0.0.1');
    socket.setEncoding('utf8');
    let text = '';
    socket.on('data', (chunk: string) => (text += chunk));
    await once(socket, 'connect');
    socket.write('EHLO early.example.net\r\n');
    await once(socket, 'close');
    expect(text).to.match(/^421 .*You talk too soon\r\n$/);
    const refusal = await bridge.waitForLog(l => l.reason === 'early_talker');
    expect(refusal).to.include({ level: 'info', command: 'CONNECT' });
  });

  it('a client that waits for the greeting is served', async () => {
    const bridge = await t.start({
      api: apiAt(t.api.url),
      smtp: { greetingDelayMs: 50 },
    });
    const result = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'jane@example.net',
        Subject: 'patient',
        'Message-ID': '<patient@example.net>',
      }),
    });
    expect(result.code).to.equal(250);
    await t.api.waitForRequests(1);
    expect(t.api.requests[0]!.body.ext_msg_id).to.equal(
      '<patient@example.net>',
    );
  });

  it('is 100 by default, and 0 greets at once: no fixed pause of smtp-server is left', async () => {
    // the shipped defaults (no NODE_ENV layer: config/test.yaml sets 0 for the tests)
    const defaults = loadConfig({ env: {} });
    expect(defaults.smtp.greetingDelayMs).to.equal(100);
    // with 0 the session is ready before the client's first bytes can be read: a client that
    // talks at once (smtp-server alone answered it 421 within its fixed 100 ms) is served
    const bridge = await t.start({
      api: apiAt(t.api.url),
      smtp: { greetingDelayMs: 0 },
    });
    const socket = connect(bridge.smtpPort, '127.0.0.1');
    socket.setEncoding('utf8');
    let text = '';
    socket.on('data', (chunk: string) => (text += chunk));
    await once(socket, 'connect');
    socket.write('EHLO at-once.example.net\r\nQUIT\r\n');
    await once(socket, 'close');
    expect(text).to.match(/^220 /);
    expect(text).to.match(/\r\n250[ -]/);
    expect(text).to.match(/\r\n221 /);
    expect(text).not.to.include('421');
  });
});
