// Sync mode keeps the queue workers' dedupe records: a message resent after a 451 (or resent at
// all) is not posted again to the mailboxes that already took it.
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  apiAt,
  useBridge,
  type BridgeOptions,
  type TestBridge,
} from '../helpers/bridge.js';
import { queueIdOf } from '../helpers/queue-tools.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';
import { DedupeStore } from '../../src/dedupe/dedupe-store.js';

const DAY = 86_400_000;

const ROUTES = [
  { match: 'a@example.com', mailbox_id: 'mb-a' },
  { match: 'b@example.com', mailbox_id: 'mb-b' },
  { match: 'c@example.com', mailbox_id: 'mb-c' },
];
const AB = ['a@example.com', 'b@example.com'];

const MESSAGE = makeMessage({
  From: 'jane@example.net',
  To: 'a@example.com, b@example.com',
  Subject: 'sync dedupe',
  'Message-ID': '<sync-dedupe@example.net>',
});

describe('sync mode: dedupe', () => {
  const t = useBridge();

  async function start(
    overrides: Record<string, unknown> = {},
    options: BridgeOptions = {},
  ): Promise<TestBridge> {
    const { delivery, ...rest } = overrides as { delivery?: object };
    return t.start(
      {
        delivery: { mode: 'sync', ...delivery },
        api: apiAt(t.api.url),
        routes: ROUTES,
        ...rest,
      },
      options,
    );
  }

  const send = (bridge: TestBridge, to = AB, raw = MESSAGE) =>
    sendRaw({ port: bridge.smtpPort, to, raw });

  /** The statuses the stand-in answered for `mailbox`, in order. */
  const answered = (mailbox: string, statuses: number[]) =>
    t.api.requests
      .map((r, i) => ({ r, status: statuses[i] }))
      .filter(({ r }) => r.body.mailbox_id === mailbox)
      .map(({ status }) => status);

  it('B fails once: 451; the resent message posts only B; A posted once, B twice', async () => {
    const bridge = await start();
    const statuses: number[] = [];
    let failB = true;
    t.api.respondWith(r => {
      const status = r.body.mailbox_id === 'mb-b' && failB ? 503 : 204;
      if (status === 503) failB = false;
      statuses.push(status);
      return { status };
    });

    const first = await send(bridge);
    expect(first.response).to.match(/^451 4\.3\.0 /);
    expect(answered('mb-a', statuses)).to.deep.equal([204]);
    expect(answered('mb-b', statuses)).to.deep.equal([503]);

    const retry = await send(bridge);
    expect(retry.code, retry.response).to.equal(250);
    expect(answered('mb-a', statuses)).to.deep.equal([204]);
    expect(answered('mb-b', statuses)).to.deep.equal([503, 204]);
    // both posts of B carry the same idempotency key: the API may recognise the retry too
    const [b1, b2] = t.api.requests.filter(r => r.body.mailbox_id === 'mb-b');
    expect(b2?.headers['idempotency-key']).to.equal(
      b1?.headers['idempotency-key'],
    );
  });

  it('the same message sent twice: posted once per mailbox, the second send still 250', async () => {
    const bridge = await start();
    const first = await send(bridge);
    expect(first.code, first.response).to.equal(250);
    expect(t.api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-a',
      'mb-b',
    ]);

    const second = await send(bridge);
    expect(second.code, second.response).to.equal(250);
    expect(second.response).to.match(/delivered as /);
    expect(t.api.requests).to.have.length(2);

    // a mailbox that has not had it yet still gets it
    const third = await send(bridge, ['b@example.com', 'c@example.com']);
    expect(third.code, third.response).to.equal(250);
    expect(t.api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-a',
      'mb-b',
      'mb-c',
    ]);
  });

  it('with dedupeWindowMs 0 every send posts', async () => {
    const bridge = await start({ delivery: { dedupeWindowMs: 0 } });
    for (let i = 0; i < 2; i++) {
      const result = await send(bridge);
      expect(result.code, result.response).to.equal(250);
    }
    expect(t.api.requests).to.have.length(4);
  });

  it('what sync mode delivered, a queue-mode daemon on the same spool does not post again', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-sync-dedupe-'));
    const sync = await start({}, { spoolDir, keepSpool: true });
    expect((await send(sync, ['a@example.com'])).code).to.equal(250);
    await sync.close();

    const queued = await start({ delivery: { mode: 'queue' } }, { spoolDir });
    const result = await send(queued);
    expect(result.code, result.response).to.equal(250);
    const id = queueIdOf(result.response);
    await queued.waitForLog(
      l =>
        l.stage === 'deliver' &&
        l.queueId === id &&
        l.message === 'message delivered',
    );
    expect(t.api.requests.map(r => r.body.mailbox_id)).to.deep.equal([
      'mb-a',
      'mb-b',
    ]);
  });

  it('prunes records past the window at start, as queue mode does', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailbridge-sync-prune-'));
    const dir = join(spoolDir, 'dedupe');
    const old = DedupeStore.key('<old@example.net>', 'mb-a');
    const fresh = DedupeStore.key('<fresh@example.net>', 'mb-a');
    // records written through the store itself, whatever its layout on disk
    let clock = Date.now() - 8 * DAY;
    const writer = new DedupeStore(dir, 7 * DAY, () => clock);
    await writer.add(old);
    clock = Date.now();
    await writer.add(fresh);
    await writer.close();

    const bridge = await start(
      { delivery: { dedupeWindowMs: 7 * DAY } },
      { spoolDir },
    );
    await bridge.waitForLog(l => l.message === 'dedupe records pruned');
    // a store whose clock is 8 days back would still count the old record as recent: gone
    const then = new DedupeStore(dir, 7 * DAY, () => Date.now() - 8 * DAY);
    expect(await then.has(old)).to.equal(false);
    expect(await then.has(fresh)).to.equal(true);
  });
});
