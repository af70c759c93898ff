// The rescan reads only new and signalled entries; a stale due time never attempts early.
import { expect } from 'chai';
import { apiAt, useBridge } from '../helpers/bridge.js';
import { readEntry, watchScans } from '../helpers/queue-tools.js';
import { runCli } from '../helpers/run-cli.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('queue mode: rescans and stale due times', () => {
  const t = useBridge();

  beforeEach(async () => {
    t.api.setDefault({ status: 503 });
    // one attempt, then the message waits an hour: only a signal or a stale time can move it
    await t.start({
      api: apiAt(t.api.url),
      delivery: {
        scanIntervalMs: 50,
        retry: { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000 },
      },
    });
  });

  /** Sends one message, waits for its first (failed) attempt; returns its queue id. */
  async function waitingMessage(): Promise<string> {
    const sent = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'jane@example.net',
        To: 'support@example.com',
        Subject: 'scan',
        'Message-ID': '<scan-1@example.net>',
      }),
    });
    expect(sent.code).to.equal(250);
    const deferred = await t.bridge.waitForLog(
      l => l.message === 'delivery deferred',
    );
    return deferred.queueId as string;
  }

  it('reads a known waiting entry again only when `queue retry` signals it', async () => {
    const id = await waitingMessage();
    const spool = t.bridge.daemon.spool;
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
      MAILBRIDGE_SPOOL_DIR: t.bridge.spoolDir,
    });
    expect(retried.code, retried.stderr).to.equal(0);
    await t.api.waitForRequests(2);
    expect(reads).to.include(`queue/${id}`);
  });

  it('puts back an entry claimed on a stale due time, without posting it', async () => {
    const id = await waitingMessage();
    const before = await readEntry(t.bridge.spoolDir, 'queue', id);
    expect(before?.attempts).to.equal(1);
    // as if another worker had rescheduled it after this one learnt an earlier time
    t.bridge.daemon.runner!.enqueue({ id, nextAttemptAt: Date.now() });
    await t.bridge.waitForLog(
      l =>
        l.message === 'not due yet: rescheduled elsewhere' && l.queueId === id,
    );
    expect(t.api.requests).to.have.length(1);
    const after = await readEntry(t.bridge.spoolDir, 'queue', id);
    expect(after).to.deep.equal(before);
  });
});
