// A TCP relay on loopback in front of a real server (redis-server): it passes bytes both ways,
// refuses connections on demand, and can cut every connection once the clients have sent a given
// number of bytes, mid-command, as a failing network would, between two pipeline chunks or
// inside one.
import { once } from 'node:events';
import net from 'node:net';

export class CuttingRelay {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private refusing = false;
  /** bytes the clients may still send before the cut (Infinity: no cut armed) */
  private budget = Infinity;
  private cut?: () => void;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer(client => this.relay(client));
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** Drops every connection and refuses new ones until pass() or cutAfter(). */
  refuse(): void {
    this.refusing = true;
    this.budget = Infinity;
    for (const socket of this.sockets) socket.destroy();
  }

  /** Relays again, without a cut. */
  pass(): void {
    this.refusing = false;
    this.budget = Infinity;
  }

  /**
   * Relays again, until the clients have sent `bytes` more: then every connection is dropped
   * and new ones are refused (until pass()). Resolves at the cut.
   */
  cutAfter(bytes: number): Promise<void> {
    this.refusing = false;
    this.budget = bytes;
    return new Promise(done => (this.cut = done));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }

  private relay(client: net.Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // a reset from either side ends both; the client sees a dropped connection
      socket.on('error', () => undefined);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (chunk.length < this.budget) {
        this.budget -= chunk.length;
        upstream.write(chunk);
        return;
      }
      // the bytes before the cut reach the server; the rest of the command never does
      upstream.write(chunk.subarray(0, this.budget), () => this.cutNow());
      this.budget = 0;
      client.pause();
    });
  }

  private cutNow(): void {
    if (this.budget !== 0) return;
    this.refuse();
    const cut = this.cut;
    this.cut = undefined;
    cut?.();
  }
}
