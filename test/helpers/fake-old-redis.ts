// A loopback server speaking just enough of Redis's protocol (RESP) to pass for an old Redis:
// INFO says its version, every other command is answered +OK. For what no Redis 7 installed here
// can show: how the daemon meets a Redis older than 7.0.
import { once } from 'node:events';
import {
  createServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';

/** Commands of one socket's input, as arrays of strings; what is incomplete stays in `rest`. */
function commands(input: string): { done: string[][]; rest: string } {
  const done: string[][] = [];
  let at = 0;
  for (;;) {
    const header = /^\*(\d+)\r\n/.exec(input.slice(at));
    if (!header) break;
    let pos = at + header[0].length;
    const args: string[] = [];
    for (let i = 0; i < Number(header[1]); i++) {
      const length = /^\$(\d+)\r\n/.exec(input.slice(pos));
      if (!length) return { done, rest: input.slice(at) };
      const start = pos + length[0].length;
      const end = start + Number(length[1]);
      if (input.length < end + 2) return { done, rest: input.slice(at) };
      args.push(input.slice(start, end));
      pos = end + 2;
    }
    done.push(args);
    at = pos;
  }
  return { done, rest: input.slice(at) };
}

export class FakeOldRedis {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** every command received, its name in capitals */
  readonly received: string[] = [];

  constructor(private readonly version: string) {
    this.server = createServer(socket => this.serve(socket));
  }

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const { port } = this.server.address() as AddressInfo;
    return `redis://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }

  private serve(socket: Socket): void {
    let pending = '';
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', chunk => {
      const { done, rest } = commands(pending + chunk.toString('latin1'));
      pending = rest;
      for (const [name = ''] of done) {
        this.received.push(name.toUpperCase());
        if (name.toUpperCase() === 'INFO') {
          const info = `# Server\r\nredis_version:${this.version}\r\nloading:0\r\n`;
          socket.write(`$${info.length}\r\n${info}\r\n`);
        } else socket.write('+OK\r\n');
      }
    });
  }
}
