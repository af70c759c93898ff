// attemptRoutes, as sync mode uses it: every route tried, and with a dedupe store, none twice.
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load-config.js';
import type { RouteConfig } from '../../src/config/schema.js';
import { attemptRoutes } from '../../src/pipeline/attempt-routes.js';
import { decisiveFailure } from '../../src/pipeline/decide.js';
import { idempotencyKey, mailboxKey } from '../../src/pipeline/route-keys.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import type {
  PayloadSink,
  PostContext,
} from '../../src/pipeline/payload-sink.js';
import type { Envelope } from '../../src/mail/envelope.js';
import {
  PermanentError,
  TemporaryError,
} from '../../src/errors/bridge-error.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { DedupeStore } from '../../src/dedupe/dedupe-store.js';
import type { Claim, DedupeRecords } from '../../src/dedupe/dedupe-records.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const WINDOW = 7 * 86_400_000;

const route = (match: string, mailbox_id?: string): RouteConfig => ({
  match,
  mailbox_id,
  thread_from_subaddress: false,
  fields: {},
});

const CONFIG = {
  mapping: loadConfig({ env: { NODE_ENV: 'test' } }).mapping,
  routes: [
    route('a@example.com', 'mb-a'),
    route('b@example.com', 'mb-b'),
    route('c@example.com'),
  ],
};

const RAW = [
  'From: jane@example.net',
  'To: a@example.com, b@example.com',
  'Subject: unit',
  'Message-ID: < Unit-1@Example.NET >',
  '',
  'Hello.',
  '',
].join('\r\n');

/** The normalised Message-ID of RAW: what the queue workers key their records with. */
const key = (mailbox: string) =>
  DedupeStore.key('<Unit-1@Example.NET>', mailbox);

/** A sink that records each post and fails it as the test's script says. */
class ScriptedSink implements PayloadSink {
  readonly kind = 'api';
  readonly posts: Array<{ payload: ApiPayload; context: PostContext }> = [];

  constructor(
    private readonly script: (payload: ApiPayload) => Error | undefined = () =>
      undefined,
  ) {}

  async send(payload: ApiPayload, context: PostContext): Promise<void> {
    this.posts.push({ payload, context });
    const failure = this.script(payload);
    if (failure) throw failure;
  }

  async close(): Promise<void> {}

  mailboxes(): unknown[] {
    return this.posts.map(p => p.payload.mailbox_id ?? null);
  }
}

const fail503 = (mailbox: string) => (payload: ApiPayload) =>
  payload.mailbox_id === mailbox
    ? new TemporaryError('API HTTP 503', { api: { status: 503, errors: [] } })
    : undefined;

function envelope(rcptTo: string[]): Envelope {
  return {
    id: 'QID1',
    mailFrom: 'jane@example.net',
    rcptTo,
    receivedAt: new Date(NOW).toISOString(),
  };
}

/**
 * What sync mode makes of an attempt: the counts of routes posted and skipped, or the failure
 * the sender hears of (decisiveFailure) when any route failed.
 */
async function deliverMessage(
  raw: Buffer,
  envelope: Envelope,
  config: typeof CONFIG,
  sink: PayloadSink,
  dedupe: DedupeRecords | undefined,
  attachmentDir: string,
): Promise<{ posted: number; duplicates: number }> {
  const outcome = await attemptRoutes(
    {
      source: raw,
      parse: { attachmentDir },
      envelope,
      groups: groupByRoute(envelope.rcptTo, config.routes),
      // as found at accept time; no fingerprint: the key of the records below
      keys: { messageId: '<Unit-1@Example.NET>' },
    },
    { mapping: config.mapping, sink, dedupe },
  );
  if (outcome.kind === 'unparsed') throw outcome.error;
  const failures = outcome.routes.flatMap(r =>
    r.outcome === 'failed' ? [r.failure] : [],
  );
  if (failures.length > 0) throw decisiveFailure(failures);
  const duplicates = outcome.routes.filter(
    r => r.outcome === 'duplicate',
  ).length;
  return { posted: outcome.routes.length - duplicates, duplicates };
}

describe('attemptRoutes (sync mode)', () => {
  const AB = ['a@example.com', 'b@example.com'];
  let dir: string;
  let dedupe: DedupeStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-deliver-'));
    dedupe = new DedupeStore(join(dir, 'dedupe'), WINDOW, () => NOW);
  });
  afterEach(async () => {
    await dedupe.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Delivers the message to `rcpt` through a sink failing as `script` says; null: no store. */
  async function deliver(
    rcpt: string[],
    script?: (payload: ApiPayload) => Error | undefined,
    store: DedupeRecords | null = dedupe,
  ) {
    const sink = new ScriptedSink(script);
    const result = await deliverMessage(
      Buffer.from(RAW),
      envelope(rcpt),
      CONFIG,
      sink,
      store ?? undefined,
      dir,
    ).catch((err: unknown) => err as Error);
    return { sink, result };
  }

  it('without a store, every route is posted every time', async () => {
    for (let i = 0; i < 2; i++) {
      const { sink, result } = await deliver(AB, undefined, null);
      expect(result).to.deep.equal({ posted: 2, duplicates: 0 });
      expect(sink.mailboxes()).to.deep.equal(['mb-a', 'mb-b']);
    }
  });

  it('B failing: the message fails; its retry posts only B; a third send posts nothing', async () => {
    const first = await deliver(AB, fail503('mb-b'));
    expect(first.result).to.be.instanceOf(TemporaryError);
    expect(first.sink.mailboxes()).to.deep.equal(['mb-a', 'mb-b']);
    expect(await dedupe.has(key('mb-a'))).to.equal(true);
    expect(await dedupe.has(key('mb-b'))).to.equal(false);

    const retry = await deliver(AB);
    expect(retry.result).to.deep.equal({ posted: 1, duplicates: 1 });
    expect(retry.sink.mailboxes()).to.deep.equal(['mb-b']);
    // the route index stays the route group's position, as in the first send
    expect(retry.sink.posts[0]?.context.routeIndex).to.equal(1);

    const again = await deliver(AB);
    expect(again.result).to.deep.equal({ posted: 0, duplicates: 2 });
    expect(again.sink.posts).to.deep.equal([]);
  });

  it('skips a pair the queue workers recorded: the same keys', async () => {
    await dedupe.add(key('mb-b'));
    // a route without a mailbox is keyed by its pattern
    await dedupe.add(key('route:c@example.com'));
    const { sink, result } = await deliver([...AB, 'c@example.com']);
    expect(result).to.deep.equal({ posted: 1, duplicates: 2 });
    expect(sink.mailboxes()).to.deep.equal(['mb-a']);
    expect(mailboxKey({ route: route('c@example.com') })).to.equal(
      'route:c@example.com',
    );
  });

  it('a delivery record that cannot be written does not fail the message', async () => {
    // the dedupe folder cannot be created: a file stands where it should be
    const blocked = join(dir, 'blocked');
    await writeFile(blocked, '');
    const store = new DedupeStore(join(blocked, 'dedupe'), WINDOW, () => NOW);
    const { sink, result } = await deliver(AB, undefined, store);
    expect(result).to.deep.equal({ posted: 2, duplicates: 0 });
    expect(sink.mailboxes()).to.deep.equal(['mb-a', 'mb-b']);
  });

  it('a window of 0 keeps no records: every send posts', async () => {
    const off = new DedupeStore(join(dir, 'off'), 0, () => NOW);
    for (let i = 0; i < 2; i++) {
      const { result } = await deliver(AB, undefined, off);
      expect(result).to.deep.equal({ posted: 2, duplicates: 0 });
    }
  });

  /** A port that answers claims as told and notes every call (a fleet's, seen from here). */
  class RecordedCalls implements DedupeRecords {
    readonly calls: string[] = [];
    constructor(private readonly answers: Record<string, Claim> = {}) {}
    async claim(k: string): Promise<Claim> {
      this.calls.push(`claim ${k}`);
      return this.answers[k] ?? 'new';
    }
    async add(k: string): Promise<void> {
      this.calls.push(`add ${k}`);
    }
    async release(k: string): Promise<void> {
      this.calls.push(`release ${k}`);
    }
    async prune(): Promise<number> {
      return 0;
    }
    async close(): Promise<void> {}
  }

  it('claims each route before posting: delivered ones recorded, failed ones given back', async () => {
    const calls = new RecordedCalls();
    const { result } = await deliver(AB, fail503('mb-b'), calls);
    expect(result).to.be.instanceOf(TemporaryError);
    expect(calls.calls).to.deep.equal([
      `claim ${key('mb-a')}`,
      `claim ${key('mb-b')}`,
      `add ${key('mb-a')}`,
      `release ${key('mb-b')}`,
    ]);
  });

  it('a route another instance is posting (busy) is not posted: a temporary failure', async () => {
    const calls = new RecordedCalls({ [key('mb-b')]: 'busy' });
    const { sink, result } = await deliver(AB, undefined, calls);
    expect(result).to.be.instanceOf(TemporaryError);
    expect(sink.mailboxes()).to.deep.equal(['mb-a']);
    expect(calls.calls).to.deep.equal([
      `claim ${key('mb-a')}`,
      `claim ${key('mb-b')}`,
      `add ${key('mb-a')}`,
    ]);
  });

  describe('decisiveFailure: what the sender hears of several failed routes', () => {
    const temporary = new TemporaryError('later');
    const permanent = new PermanentError('never');
    const bug = new Error('a bug');
    const cases: Array<[name: string, failures: unknown[], expected: unknown]> =
      [
        ['one permanent', [permanent], permanent],
        [
          'permanent then temporary: the temporary (the sender retries)',
          [permanent, temporary],
          temporary,
        ],
        ['temporary then permanent', [temporary, permanent], temporary],
        ['a bug counts as temporary', [permanent, bug], bug],
        [
          'two permanent: the first',
          [permanent, new PermanentError('other')],
          permanent,
        ],
      ];
    for (const [name, failures, expected] of cases) {
      it(name, () => {
        expect(decisiveFailure(failures)).to.equal(expected);
      });
    }
  });
});

describe('idempotencyKey', () => {
  // a retry after an upgrade must carry the key its first POST had, or the API cannot tell
  it('is SHA-256("<ext_msg_id>\\n<route match>\\n<mailbox_id>") in hex, unchanged across releases', () => {
    const group = {
      route: route('support@example.com', 'mb-1'),
      index: 0,
      recipients: ['support@example.com'],
    };
    expect(idempotencyKey({ ext_msg_id: '<a@example.net>' }, group)).to.equal(
      'e72bac49b593824d9835b64a51a3daa6aee9d7b3d4526a67bd641028c82daaac',
    );
  });
});
