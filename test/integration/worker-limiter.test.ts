// A cluster worker's SMTP listener with its per-client counts kept by a primary that answers
// late: the real daemon, its WorkerLimiter wired to an in-memory primary whose answers the test
// releases. A client gone before the answer must not stay counted.
import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  PrimaryLimiter,
  WorkerLimiter,
  type LimiterChannel,
  type LimiterRequest,
} from '../../src/smtp/shared-limiter.js';
import { startBridge, type TestBridge } from '../helpers/bridge.js';

/** A channel to a primary that holds each request until the test releases them. */
class HeldChannel extends EventEmitter implements LimiterChannel {
  private readonly held: LimiterRequest[] = [];
  holding = true;

  constructor(private readonly primary: PrimaryLimiter) {
    super();
  }

  send(message: LimiterRequest, done: (error: Error | null) => void): void {
    done(null);
    if (this.holding) {
      this.held.push(message);
      this.emit('held', message);
    } else this.handle(message);
  }

  /** Hands the held requests to the primary, and from now on every request at once. */
  release(): void {
    this.holding = false;
    for (const message of this.held.splice(0)) this.handle(message);
  }

  private handle(message: LimiterRequest): void {
    const answer = this.primary.handle(1, message);
    if (!answer) return;
    setImmediate(() => {
      this.emit('message', answer);
      this.emit('answered', answer);
    });
  }
}

/** Connects and resolves with the first line the server says. */
async function firstLine(socket: Socket): Promise<string> {
  socket.setEncoding('utf8');
  let text = '';
  while (!text.includes('\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [string];
    text += chunk;
  }
  return text.split('\r\n')[0]!;
}

describe('a cluster worker whose primary answers late', () => {
  let bridge: TestBridge | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await bridge?.close();
  });

  function open(): Socket {
    const socket = connect(bridge!.smtpPort, '127.0.0.1');
    sockets.push(socket);
    return socket;
  }

  it('a client gone before the answer is given back at once: the next session is let in', async () => {
    const primary = new PrimaryLimiter({ maxConnections: 1, perMinute: 0 });
    const channel = new HeldChannel(primary);
    bridge = await startBridge(
      { smtp: { maxConnectionsPerClient: 1 } },
      { daemon: { limiter: new WorkerLimiter(channel) } },
    );
    const early = open();
    await once(channel, 'held');
    early.destroy();
    await bridge.waitForLog(
      l => l.message === 'session closed before its client count was answered',
    );
    // the primary counts it only now, and the worker gives it straight back: the next
    // session's count is asked after that (smtp-server waits 100 ms before it asks)
    channel.release();
    await once(channel, 'answered');
    expect(await firstLine(open())).to.match(/^220 /);
    expect(primary.openSessions).to.equal(1);
  });
});
