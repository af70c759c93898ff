// Regression (review): recover() rebuilds a state from the header line of any msg/<id>.eml without one. The
// steps that drop a message state first and raw file second (purge, delivery) then bring it back.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { RouteConfig } from '../../src/config/schema.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { receiveToFile } from '../../src/smtp/receive-to-file.js';
import { newQueueEntry, withReceived } from '../../src/spool/queue-entry.js';
import { spoolHeader } from '../../src/spool/spool-file.js';
import { Spool } from '../../src/spool/spool.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const ROUTES: RouteConfig[] = [
  { match: '*', thread_from_subaddress: false, fields: {} },
];
const RAW = 'Subject: gone\r\nMessage-ID: <gone@example.net>\r\n\r\nHi.\r\n';

describe('recover and messages removed state first', () => {
  let dir: string;
  let spool: Spool;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-review-resurrect-'));
    spool = await new Spool(dir).init();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A message accepted by SMTP and parked in queue/ (raw file with its header line in msg/). */
  async function parked(id: string): Promise<void> {
    const initial = newQueueEntry({
      envelope: {
        id,
        mailFrom: 'jane@example.net',
        rcptTo: ['support@example.com'],
        receivedAt: new Date(NOW).toISOString(),
      },
      groups: groupByRoute(['support@example.com'], ROUTES),
      messageId: null,
      size: 0,
      now: NOW,
    });
    const received = await receiveToFile(
      Readable.from([Buffer.from(RAW)]),
      spool.tmpMessagePath(id),
      { durable: true, header: spoolHeader(initial) },
    );
    await spool.commitFresh(id, received.path);
    await spool.park(withReceived(initial, received), 'queue');
  }

  it('`queue purge` cut short after it took the state: the purged message is not queued again', async () => {
    await parked('P1');
    // purge: take() the state (into tmp/, then unlinked), then remove() the raw file...
    expect(await spool.take('P1', 'queue')).not.to.equal(null);
    // ...the command is killed (Ctrl-C, OOM) before the second step; the daemon starts
    await spool.recover(NOW);
    expect(await spool.ids('queue')).to.deep.equal([]);
  });

  it('a delivery whose remove() was cut short after the state: not queued again (dedupe off: posted twice)', async () => {
    await parked('D1');
    expect(await spool.claim('D1')).not.to.equal(null);
    // delivered: remove(id, 'active') unlinks the state, then the raw file; a crash in between
    await rm(join(dir, 'active', 'D1.json'));
    await spool.recover(NOW);
    expect(await spool.ids('queue')).to.deep.equal([]);
  });
});
