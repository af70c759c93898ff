// The rescan reads only new and signalled entries; a stale due time never attempts early.
import { expect } from 'chai';
import { startBridge, apiAt, type TestBridge } from '../helpers/bridge.js';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.js';
import { readEntry, watchScans } from '../helpers/queue-tools.js';
import { runCli } from '../helpers/run-cli.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('queue mode: rescans and stale due times', () => {
  let api: FakeApi;
  let bridge: TestBridge;

  beforeEach(async () => {
    api = await startFakeApi();
    api.setDefault({ status: 503 });
    // one attempt, then the message waits an hour: only a signal or a stale time can move it
    bridge = await startBridge({
      api: apiAt(api.url),
      delivery: {
        scanIntervalMs: 50,
        retry: { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000 },
      },
    });
  });
  afterEach(async () => {
    await bridge.close();
    await api.close();
  });

  /** Sends one message, waits for its first (failed) attempt; returns its queue id. */
  async function waitingMessage(): Promise<string> {
    const sent = await sendRaw({
      port: bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'jane@example.net',
        To: 'support@example.com',
        Subject: 'scan',
        'Message-ID': '<scan-1@example.net>',
      }),
    });
    expect(sent.code).to.equal(250);
    const deferred = await bridge.waitForLog(
      l => l.message === 'delivery deferred',
    );
    return deferred.queueId as string;
  }

  it('reads a known waiting entry again only when `queue retry` signals it', async () => {
    const id = await waitingMessage();
    const spool = bridge.daemon.spool;
    const reads: string[] = [];
    const read = spool.read.bind(spool);
    spool.read = async (state, entryId) => {
      reads.push(`${state}/${entryId}`);
      return read(state, entryId);
    };
    const scans = watchScans(spool);
    await scans.next(3);
    expect(reads, 'a known entry is not re-read by a rescan').to.deep.equal([]);

    const retried = await runCli(['queue', 'retry', id], {
      MAILBRIDGE_SPOOL_DIR: bridge.spoolDir,
    });
    expect(retried.code, retried.stderr).to.equal(0);
    await api.waitForRequests(2);
    expect(reads).to.include(`queue/${id}`);
  });

  it('puts back an entry claimed on a stale due time, without posting it', async () => {
    const id = await waitingMessage();
    const before = await readEntry(bridge.spoolDir, 'queue', id);
    expect(before?.attempts).to.equal(1);
    // as if another worker had rescheduled it after this one learnt an earlier time
    bridge.daemon.runner!.enqueue({ id, nextAttemptAt: Date.now() });
    await bridge.waitForLog(
      l =>
        l.message === 'not due yet: rescheduled elsewhere' && l.queueId === id,
    );
    expect(api.requests).to.have.length(1);
    const after = await readEntry(bridge.spoolDir, 'queue', id);
    expect(after).to.deep.equal(before);
  });
});
