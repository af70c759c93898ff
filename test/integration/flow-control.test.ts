// Flow control: while delivery lags behind accepting, a new transaction waits before its MAIL FROM
// is answered (smtp.inFlowDelayMs at most), and goes on once delivery catches up. Never refused.
import { expect } from 'chai';
import nodemailer from 'nodemailer';
import { apiAt, startBridge, type TestBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import {
  makeMessage,
  openSession,
  type RawSession,
} from '../helpers/smtp-client.js';

/** With api.concurrency 1 the flow limit is its minimum: 100 messages waiting. */
const FLOW_BACKLOG = 100;

/** A raw session that has sent MAIL FROM; its replies are those after the EHLO reply. */
async function sendMailFrom(port: number): Promise<RawSession> {
  const session = await openSession(port);
  session.socket.write('EHLO client.example.net\r\n');
  await session.waitFor(/^250 /m);
  session.clear();
  session.socket.write('MAIL FROM:<late@example.net>\r\n');
  return session;
}

/** The count and sum of the flow-delay histogram. */
async function flowDelays(
  bridge: TestBridge,
): Promise<{ count: number; sum: number }> {
  const { values } = await bridge.daemon.metrics.flowDelaySeconds.get();
  const pick = (name: string) =>
    values.find(v => v.metricName === name)?.value ?? 0;
  return {
    count: pick('mailbridge_flow_delay_seconds_count'),
    sum: pick('mailbridge_flow_delay_seconds_sum'),
  };
}

describe('flow control (smtp.inFlowDelayMs)', () => {
  let api: FakeApi;
  let bridge: TestBridge;

  beforeEach(async () => {
    api = await startFakeApi();
    // the API takes the first post and never answers: everything after waits in memory
    api.setDefault({ status: 204, stall: true });
  });
  afterEach(async () => {
    // the API first: a post still stalled then fails at once, and the bridge need not wait
    await api.close();
    await bridge.close();
  });

  /** One message in flight (stalled) and FLOW_BACKLOG + 1 waiting: the next must wait. */
  async function fill(inFlowDelayMs: number): Promise<void> {
    bridge = await startBridge({
      api: apiAt(api.url, { concurrency: 1, timeoutMs: 60_000 }),
      smtp: { inFlowDelayMs },
    });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: bridge.smtpPort,
      ignoreTLS: true,
      pool: true,
      maxConnections: 1,
    });
    try {
      for (let i = 0; i < FLOW_BACKLOG + 2; i++) {
        const info = await transport.sendMail({
          envelope: { from: 'jane@example.net', to: ['support@example.com'] },
          raw: makeMessage({
            From: 'jane@example.net',
            To: 'support@example.com',
            Subject: `fill ${i}`,
            'Message-ID': `<fill-${i}@example.net>`,
          }),
        });
        expect(info.response).to.match(/^250 /);
      }
    } finally {
      transport.close();
    }
    await api.waitForRequests(1);
    expect(bridge.daemon.runner?.waitingFirstAttempt).to.equal(
      FLOW_BACKLOG + 1,
    );
  }

  it('a new transaction waits at MAIL FROM until delivery catches up, then goes on', async () => {
    await fill(30_000);
    const session = await sendMailFrom(bridge.smtpPort);
    await bridge.waitForLog(
      l => l.message === 'transaction waits for delivery to catch up',
    );
    expect(session.replies()).to.equal('');
    // the API answers: delivery takes the next waiting message, and the wait is over
    api.setDefault({ status: 204 });
    api.releaseStalled();
    await session.waitFor(/^250 /m);
    expect(session.replies()).to.match(/^250 2\.1\.0 Accepted/m);
    session.socket.end();
    await api.waitForRequests(FLOW_BACKLOG + 2);
    expect((await flowDelays(bridge)).count).to.equal(1);
  });

  it('a wait is bounded: after smtp.inFlowDelayMs the transaction goes on and its message is accepted', async () => {
    await fill(200);
    const session = await sendMailFrom(bridge.smtpPort);
    await session.waitFor(/^250 /m);
    // the API still answers nothing: the wait ran out, it was not ended by delivery
    expect(api.requests).to.have.length(1);
    session.socket.write(
      'RCPT TO:<support@example.com>\r\nDATA\r\n' +
        makeMessage({ Subject: 'late' }) +
        '.\r\n',
    );
    await session.waitFor(/queued as/);
    expect(session.replies()).to.match(/^250 .*queued as/m);
    session.socket.end();
    const { count, sum } = await flowDelays(bridge);
    expect(count).to.equal(1);
    // it did wait (timers may fire a fraction of a millisecond early by hrtime's clock)
    expect(sum).to.be.at.least(0.15);
  });

  it('smtp.inFlowDelayMs 0 turns it off: no transaction waits', async () => {
    await fill(0);
    const session = await sendMailFrom(bridge.smtpPort);
    await session.waitFor(/^250 /m);
    session.socket.end();
    expect(await flowDelays(bridge)).to.deep.equal({ count: 0, sum: 0 });
  });
});
