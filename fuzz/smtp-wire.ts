// A raw SMTP client: a message's bytes go out exactly as they are (bare CR and LF, NUL, 8-bit,
// lines of megabytes), which nodemailer would normalise. One transaction at a time per
// connection; every reply is kept, and a connection that closes or falls silent is reported.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/** One SMTP reply: its code and its lines joined with `\n`. */
export interface Reply {
  code: number;
  text: string;
}

/** The step of a transaction a reply or a drop came at. */
export type Stage = 'connect' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'message';

/** How a message's transaction ended: a reply that ends it, or a connection lost without one. */
export type Outcome =
  | {
      kind: 'reply';
      stage: Stage;
      code: number;
      text: string;
      queueId?: string;
    }
  | { kind: 'dropped'; stage: Stage; detail: string };

/**
 * The bytes to send after `354` for a message: a dot doubled at the start and after every LF
 * (smtp-server removes one after any LF, bare or not), then the final `.` line, after a CRLF
 * when the message does not end with one. What the server stores is then exactly the message,
 * plus that CRLF.
 */
export function dotStuff(message: Buffer): Buffer {
  const pieces: Buffer[] = [];
  let from = 0;
  if (message[0] === 0x2e) pieces.push(Buffer.from('.'));
  for (
    let lf = message.indexOf(0x0a);
    lf >= 0;
    lf = message.indexOf(0x0a, lf + 1)
  ) {
    if (message[lf + 1] === 0x2e) {
      pieces.push(message.subarray(from, lf + 1), Buffer.from('.'));
      from = lf + 1;
    }
  }
  pieces.push(message.subarray(from));
  const endsWithCrlf =
    message.length >= 2 &&
    message[message.length - 2] === 0x0d &&
    message[message.length - 1] === 0x0a;
  pieces.push(Buffer.from(endsWithCrlf ? '.\r\n' : '\r\n.\r\n'));
  return Buffer.concat(pieces);
}

/** Splits what a server sent into complete replies; keeps a partial line for the next chunk. */
export class ReplyParser {
  private partial = '';
  private lines: string[] = [];

  /** Feeds received text; returns the replies it completed. */
  feed(chunk: string): Reply[] {
    this.partial += chunk;
    const replies: Reply[] = [];
    for (
      let eol = this.partial.indexOf('\n');
      eol >= 0;
      eol = this.partial.indexOf('\n')
    ) {
      const line = this.partial.slice(0, eol).replace(/\r$/, '');
      this.partial = this.partial.slice(eol + 1);
      this.lines.push(line);
      if (!/^\d{3}-/.test(line)) {
        const code = Number(line.slice(0, 3));
        replies.push({
          code: Number.isNaN(code) ? 0 : code,
          text: this.lines.join('\n'),
        });
        this.lines = [];
      }
    }
    return replies;
  }
}

/** The envelope every case is sent with: one route takes the recipient. */
export const ENVELOPE = { from: 'fuzz@example.net', to: 'support@example.com' };

export class SmtpWire {
  private readonly parser = new ReplyParser();
  private readonly replies: Reply[] = [];
  private closed = false;
  private wake?: () => void;
  private size = false;
  private eightBit = false;

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.replies.push(...this.parser.feed(chunk));
      this.wake?.();
    });
    const onEnd = () => {
      this.closed = true;
      this.wake?.();
    };
    socket.on('close', onEnd);
    // a write after the server closed (EPIPE, ECONNRESET) is seen as the close that caused it
    socket.on('error', onEnd);
  }

  /** Connects, reads the greeting and says EHLO; an Outcome when that did not work. */
  static async open(
    port: number,
    timeoutMs: number,
  ): Promise<SmtpWire | Outcome> {
    const socket = connect(port, '127.0.0.1');
    const wire = new SmtpWire(socket, timeoutMs);
    const timer = setTimeout(
      () => socket.destroy(new Error('connect timed out')),
      timeoutMs,
    );
    try {
      await once(socket, 'connect');
    } catch (err) {
      socket.destroy();
      return {
        kind: 'dropped',
        stage: 'connect',
        detail: (err as Error).message,
      };
    } finally {
      clearTimeout(timer);
    }
    const greeting = await wire.expect('connect', 220);
    if (greeting) return greeting;
    wire.socket.write('EHLO fuzz.example.net\r\n');
    const ehlo = await wire.read();
    if (!ehlo || ehlo.code !== 250) return wire.fail('ehlo', ehlo);
    wire.size = /^250[- ]SIZE\b/im.test(ehlo.text);
    wire.eightBit = /^250[- ]8BITMIME\b/im.test(ehlo.text);
    return wire;
  }

  /** Whether another transaction may start on this connection. */
  get usable(): boolean {
    return !this.closed;
  }

  /** One transaction: MAIL, RCPT, DATA and the message; resolves with how it ended. */
  async send(message: Buffer, declareSize: boolean): Promise<Outcome> {
    const params = [
      declareSize && this.size ? ` SIZE=${message.length}` : '',
      this.eightBit ? ' BODY=8BITMIME' : '',
    ].join('');
    this.socket.write(`MAIL FROM:<${ENVELOPE.from}>${params}\r\n`);
    const mail = await this.expect('mail', 250);
    if (mail) return this.reset(mail);
    this.socket.write(`RCPT TO:<${ENVELOPE.to}>\r\n`);
    const rcpt = await this.expect('rcpt', 250);
    if (rcpt) return this.reset(rcpt);
    this.socket.write('DATA\r\n');
    const data = await this.expect('data', 354);
    if (data) return this.reset(data);
    this.socket.write(dotStuff(message));
    const end = await this.read();
    if (!end) return this.fail('message', end);
    const queueId = /queued as ([0-9A-Za-z]+)/.exec(end.text)?.[1];
    return {
      kind: 'reply',
      stage: 'message',
      ...end,
      ...(queueId ? { queueId } : {}),
    };
  }

  /** QUIT, then close; never throws. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.socket.write('QUIT\r\n');
      await this.read(2000);
    }
    this.socket.destroy();
  }

  /** Reads a reply; an Outcome when it is not `code` (or none came). */
  private async expect(
    stage: Stage,
    code: number,
  ): Promise<Outcome | undefined> {
    const reply = await this.read();
    if (reply && reply.code === code) return undefined;
    return this.fail(stage, reply);
  }

  /** A refusal ends the transaction: RSET, so the next one starts clean. */
  private async reset(outcome: Outcome): Promise<Outcome> {
    if (outcome.kind === 'reply' && !this.closed) {
      this.socket.write('RSET\r\n');
      await this.read();
    }
    return outcome;
  }

  private fail(stage: Stage, reply: Reply | undefined): Outcome {
    if (reply) {
      return { kind: 'reply', stage, code: reply.code, text: reply.text };
    }
    const detail = this.closed
      ? 'connection closed without a reply'
      : `no reply within ${this.timeoutMs} ms`;
    this.socket.destroy();
    this.closed = true;
    return { kind: 'dropped', stage, detail };
  }

  /** The next reply, or undefined when the connection closed or `timeoutMs` passed first. */
  private async read(timeoutMs = this.timeoutMs): Promise<Reply | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0 && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.replies.shift();
  }
}
