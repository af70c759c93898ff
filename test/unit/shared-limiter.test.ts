// The per-client limits of a cluster: the primary counts for every worker (shared-limiter.ts).
// Workers and primary are wired by in-memory channels that deliver a turn later, as IPC does.
import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import type { ClientLimits } from '../../src/smtp/client-access.js';
import {
  PrimaryLimiter,
  UNANSWERED,
  WorkerLimiter,
  type LimiterAnswer,
  type LimiterChannel,
  type LimiterRequest,
} from '../../src/smtp/shared-limiter.js';

const CLIENT = '192.0.2.7';

/** A worker's end of the channel; `deliver` false holds its requests (a stuck primary). */
class TestChannel extends EventEmitter implements LimiterChannel {
  readonly held: LimiterRequest[] = [];
  deliver = true;
  closed = false;

  constructor(
    private readonly primary: PrimaryLimiter,
    private readonly workerId: number,
  ) {
    super();
  }

  send(message: LimiterRequest, done: (error: Error | null) => void): void {
    if (this.closed) {
      setImmediate(() => done(new Error('channel closed')));
      return;
    }
    if (!this.deliver) {
      this.held.push(message);
      return;
    }
    setImmediate(() => {
      this.answer(this.primary.handle(this.workerId, message));
      done(null);
    });
  }

  /** Hands the held requests to the primary now, and their answers back. */
  release(): void {
    for (const message of this.held.splice(0)) {
      this.answer(this.primary.handle(this.workerId, message));
    }
  }

  private answer(answer: LimiterAnswer | undefined): void {
    if (answer) setImmediate(() => this.emit('message', answer));
  }
}

function cluster(limits: Partial<ClientLimits> = {}, timeoutMs = 2000) {
  const primary = new PrimaryLimiter({
    maxConnections: 2,
    perMinute: 0,
    ...limits,
  });
  const channels = [1, 2].map(id => new TestChannel(primary, id));
  const workers = channels.map(c => new WorkerLimiter(c, timeoutMs));
  return {
    primary,
    channels,
    workers: workers as [WorkerLimiter, WorkerLimiter],
  };
}

/** Resolves once the primary has handled what is in flight (closes are only told). */
function settled(): Promise<void> {
  return new Promise(done => setImmediate(() => setImmediate(done)));
}

describe('shared limiter: one count for every worker of a cluster', () => {
  it('sessions open on two workers count together against maxConnections', async () => {
    const { workers, primary } = cluster({ maxConnections: 2 });
    const [one, two] = workers;
    expect(await one.open(CLIENT)).to.equal(undefined);
    expect(await two.open(CLIENT)).to.equal(undefined);
    expect((await one.open(CLIENT))?.reason).to.equal('connections');
    expect((await two.open(CLIENT))?.reason).to.equal('connections');
    expect(primary.openSessions).to.equal(2);
    two.close(CLIENT);
    await settled();
    expect(await one.open(CLIENT)).to.equal(undefined);
    // another client is counted on its own
    expect(await two.open('192.0.2.8')).to.equal(undefined);
  });

  it('sessions started on two workers count together against the rate', async () => {
    const { workers } = cluster({ maxConnections: 50, perMinute: 3 });
    const [one, two] = workers;
    for (const worker of [one, two, one]) {
      expect(await worker.open(CLIENT)).to.equal(undefined);
      worker.close(CLIENT);
    }
    expect((await two.open(CLIENT))?.reason).to.equal('rate');
  });

  it('failed logins on two workers count together; past the limit the client is refused', async () => {
    const { workers } = cluster({ maxConnections: 50 });
    const [one, two] = workers;
    const blocked: boolean[] = [];
    for (let i = 0; i < 10; i++) {
      blocked.push(await (i % 2 ? two : one).loginFailed(CLIENT));
    }
    expect(blocked.slice(0, 9)).to.deep.equal(Array(9).fill(false));
    expect(blocked[9]).to.equal(true);
    expect((await two.open(CLIENT))?.reason).to.equal('logins');
  });

  it('a worker that dies gives back its sessions', async () => {
    const { workers, primary } = cluster({ maxConnections: 2 });
    const [one, two] = workers;
    await one.open(CLIENT);
    await one.open(CLIENT);
    expect((await two.open(CLIENT))?.reason).to.equal('connections');
    primary.workerGone(1);
    expect(primary.openSessions).to.equal(0);
    expect(await two.open(CLIENT)).to.equal(undefined);
    expect(await two.open(CLIENT)).to.equal(undefined);
  });

  it("a close a worker does not hold frees nothing of another worker's", async () => {
    const { workers, primary } = cluster({ maxConnections: 1 });
    const [one, two] = workers;
    await one.open(CLIENT);
    two.close(CLIENT);
    await settled();
    expect(primary.openSessions).to.equal(1);
    expect((await two.open(CLIENT))?.reason).to.equal('connections');
  });

  it('no answer in time: refused for now (421), and a late count is given back', async () => {
    const { workers, channels, primary } = cluster({ maxConnections: 2 }, 20);
    const [one] = workers;
    channels[0]!.deliver = false;
    const refusal = await one.open(CLIENT);
    expect(refusal).to.deep.equal(UNANSWERED);
    expect(refusal).to.include({ reason: 'limiter', responseCode: 421 });
    // the primary answers at last and counts the session, which the worker had refused
    channels[0]!.deliver = true;
    channels[0]!.release();
    expect(primary.openSessions).to.equal(1);
    await once(channels[0]!, 'message');
    await settled();
    expect(primary.openSessions).to.equal(0);
  });

  it('a late count is undone with its start: it does not use up the connection rate', async () => {
    const { workers, channels } = cluster(
      { maxConnections: 50, perMinute: 2 },
      20,
    );
    const [one, two] = workers;
    channels[0]!.deliver = false;
    expect(await one.open(CLIENT)).to.deep.equal(UNANSWERED);
    channels[0]!.deliver = true;
    channels[0]!.release();
    await once(channels[0]!, 'message');
    await settled();
    // the refused session took none of the two starts a minute allows
    expect(await two.open(CLIENT)).to.equal(undefined);
    expect(await one.open(CLIENT)).to.equal(undefined);
    expect((await two.open(CLIENT))?.reason).to.equal('rate');
  });

  it('every late count is given back, however many sessions timed out meanwhile', async () => {
    const { workers, channels, primary } = cluster({ maxConnections: 1e5 }, 5);
    const [one] = workers;
    channels[0]!.deliver = false;
    const refusals = await Promise.all(
      Array.from({ length: 1500 }, (_, i) => one.open(`192.0.2.${i % 250}`)),
    );
    expect(refusals.every(r => r === UNANSWERED)).to.equal(true);
    channels[0]!.deliver = true;
    channels[0]!.release();
    expect(primary.openSessions).to.equal(1500);
    // the answers come back a turn later, and each late count is closed
    await once(channels[0]!, 'message');
    await settled();
    await settled();
    expect(primary.openSessions).to.equal(0);
  });

  it('a channel that is closed (the primary gone): refused for now at once; a failed login closes the session', async () => {
    const { workers, channels } = cluster({}, 60_000);
    const [one] = workers;
    channels[0]!.closed = true;
    expect(await one.open(CLIENT)).to.deep.equal(UNANSWERED);
    expect(await one.loginFailed(CLIENT)).to.equal(true);
  });
});
