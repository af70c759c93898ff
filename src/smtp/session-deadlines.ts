// Deadlines that trickling does not reset: a command line, a DATA, a whole session. On expiry the
// client gets `421 4.4.2` and the connection closes (smtp-server's own timeout is an idle one,
// which one byte a second keeps away for ever).
import type { Socket } from 'node:net';
import type {
  SMTPServer,
  SMTPServerDataStream,
  SMTPServerOptions,
  SMTPServerSession,
} from 'smtp-server';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** smtp-server's connection of a session (its socket, send, close: typed in its d.ts). */
type Connection = SMTPServer['connections'] extends Set<infer C> ? C : never;
type OnData = NonNullable<SMTPServerOptions['onData']>;

/** Which deadline closed a session (the metric's label and the log line's `deadline`). */
export type Deadline = 'command' | 'data' | 'session';

export interface DeadlineLimits {
  /** a command line, from its first byte to its line end (a STARTTLS handshake counts as one) */
  commandMs: number;
  /** DATA, from its 354 to the final dot, at least (the floor) */
  dataMs: number;
  /** bytes per second of DATA that each earn DATA more time; 0: `dataMs` flat */
  dataMinRate: number;
  /** DATA bytes past this earn no more time (the size limit: the excess is refused anyway) */
  dataMaxBytes: number;
  /** the whole session, from its admission; never cuts a DATA short (see `expire`) */
  sessionMs: number;
}

/** The 421 text of each deadline, the enhanced code first (sent as is). */
const REPLIES: Record<Deadline, string> = {
  command: '4.4.2 Command not received in time, closing connection',
  data: '4.4.2 Message not received in time, closing connection',
  session: '4.4.2 Session time limit reached, closing connection',
};

/**
 * What a DATA stream cut off by its deadline is destroyed with: a client gone (smtp-server's
 * ECONNECTION), which on-data.ts tells apart by its class for the outcome line.
 */
export class DataDeadlineError extends Error {
  readonly code = 'ECONNECTION';
  constructor() {
    super('DATA not received in time');
    this.name = 'DataDeadlineError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/**
 * The deadlines of every session. Hooked into smtp-server without a fork: `start` when onConnect
 * admits a session (its connection, from `server.connections`), `onSecure` to follow the socket
 * that STARTTLS puts in place, `watchData` around onData, `stop` from onClose.
 */
export class SessionDeadlines {
  private readonly watches = new Map<string, SessionWatch>();

  constructor(
    private readonly limits: DeadlineLimits,
    private readonly deps: { log: Logger; metrics: Metrics },
    /** the server's open connections (resolved when a session starts) */
    private readonly connections: () => Iterable<Connection>,
  ) {}

  /** A session admitted by onConnect: its session deadline starts, its lines are watched. */
  start(session: SMTPServerSession): void {
    let connection: Connection | undefined;
    for (const c of this.connections()) {
      if (c.id === session.id) {
        connection = c;
        break;
      }
    }
    // not there: closed while onConnect was answered, and onClose is on its way
    if (!connection || connection._closing || connection._closed) return;
    const watch = new SessionWatch(connection, this.limits, deadline =>
      this.report(session, deadline, watch),
    );
    this.watches.set(session.id, watch);
  }

  /** The session closed: its timers go. */
  stop(session: SMTPServerSession): void {
    this.watches.get(session.id)?.stop();
    this.watches.delete(session.id);
  }

  /** onSecure: after STARTTLS the lines come from the TLS socket (and the handshake is over). */
  readonly onSecure: NonNullable<SMTPServerOptions['onSecure']> = (
    socket,
    session,
    callback,
  ) => {
    this.watches.get(session.id)?.secured(socket);
    // at once: smtp-server pipes the socket to its parser only once this is called
    callback();
  };

  /** Wraps onData: the DATA deadline runs from the 354 to the final dot, and the reply is known. */
  watchData(handler: OnData): OnData {
    return (stream, session, callback) => {
      const watch = this.watches.get(session.id);
      watch?.dataStarted(stream);
      handler(stream, session, (...reply) => {
        callback(...reply);
        watch?.replied();
      });
    };
  }

  private report(
    session: SMTPServerSession,
    deadline: Deadline,
    watch: SessionWatch,
  ): void {
    this.watches.delete(session.id);
    this.deps.metrics.sessionTimeouts.inc({ deadline });
    this.deps.log.info('session timed out', {
      sessionId: session.id,
      remoteAddress: session.remoteAddress,
      deadline,
      ...watch.facts(),
      code: 421,
    });
  }
}

/** One session's deadlines, from the bytes its sockets receive and the DATA smtp-server hands on. */
class SessionWatch {
  private readonly startedAt = performance.now();
  private socket: Socket | undefined;
  private readonly sessionTimer: NodeJS.Timeout;
  private commandTimer: NodeJS.Timeout | undefined;
  private dataTimer: NodeJS.Timeout | undefined;
  /** the DATA being received (from the 354 to the final dot) */
  private receiving: SMTPServerDataStream | undefined;
  private dataStartedAt = 0;
  private dataBytes = 0;
  /** from onData until its reply: the server owes the client an answer */
  private answering = false;
  /** a deadline that passed while the server owed a reply: it closes once the reply is out */
  private due: Deadline | undefined;
  private done = false;

  constructor(
    private readonly connection: Connection,
    private readonly limits: DeadlineLimits,
    private readonly closed: (deadline: Deadline) => void,
  ) {
    this.watch(connection._socket);
    this.sessionTimer = timer(() => this.expire('session'), limits.sessionMs);
  }

  /** What the log line tells: the session's age, and the DATA's progress when it was cut. */
  facts(): Record<string, number> {
    const now = performance.now();
    return {
      sessionMs: Math.round(now - this.startedAt),
      ...(this.receiving
        ? {
            dataMs: Math.round(now - this.dataStartedAt),
            dataBytes: this.dataBytes,
          }
        : {}),
    };
  }

  secured(socket: Socket): void {
    // the handshake that STARTTLS began is over (an implicit TLS one was before the session)
    this.clear('command');
    this.watch(socket);
  }

  dataStarted(stream: SMTPServerDataStream): void {
    this.clear('command');
    this.receiving = stream;
    this.answering = true;
    this.dataStartedAt = performance.now();
    this.dataBytes = 0;
    const ended = () => this.dataEnded(stream);
    stream.once('end', ended);
    stream.once('close', ended);
    this.armData();
  }

  replied(): void {
    this.answering = false;
    this.settle();
  }

  stop(): void {
    this.done = true;
    clearTimeout(this.sessionTimer);
    this.clear('command');
    this.clear('data');
    this.socket?.off('data', this.onBytes);
  }

  private watch(socket: Socket): void {
    if (socket === this.socket) return;
    this.socket?.off('data', this.onBytes);
    this.socket = socket;
    // on the first socket, after smtp-server's pipe to its parser: when the line end of a
    // STARTTLS is seen here, the command has run (onBytes checks _upgrading); nothing else
    // depends on the order
    socket.on('data', this.onBytes);
  }

  /**
   * Every byte the client sends, as it arrives. Outside DATA a line starts with the first byte
   * after a line end (LF, as smtp-server's parser reads it) and its deadline runs until the
   * next line end; nothing else resets it.
   */
  private readonly onBytes = (chunk: Buffer): void => {
    if (this.done) return;
    if (this.receiving) {
      this.dataBytes += chunk.length;
      return;
    }
    const lastEnd = chunk.lastIndexOf(0x0a);
    if (lastEnd === chunk.length - 1) this.clear('command');
    else if (lastEnd >= 0 || !this.commandTimer) this.armCommand();
    // STARTTLS was just dispatched: the handshake is the next thing the client owes
    if (this.connection._upgrading && !this.commandTimer) this.armCommand();
  };

  private armCommand(): void {
    this.clear('command');
    this.commandTimer = timer(
      () => this.expire('command'),
      this.limits.commandMs,
    );
  }

  /** Arms the DATA deadline where the bytes so far put it: the floor, plus time per byte. */
  private armData(): void {
    const { dataMs, dataMinRate, dataMaxBytes } = this.limits;
    const earned =
      dataMinRate > 0
        ? (Math.min(this.dataBytes, dataMaxBytes) / dataMinRate) * 1000
        : 0;
    const left = this.dataStartedAt + dataMs + earned - performance.now();
    if (left <= 0) return this.expire('data');
    // when it fires, the bytes received since may have pushed the deadline further
    this.dataTimer = timer(() => this.armData(), left);
  }

  private dataEnded(stream: SMTPServerDataStream): void {
    if (this.receiving !== stream) return;
    this.receiving = undefined;
    this.clear('data');
    this.settle();
  }

  /** Closes for a deadline that came due while the server owed a reply, once it is sent. */
  private settle(): void {
    const due = this.due;
    if (!due || this.receiving || this.answering) return;
    // smtp-server writes the reply after onData's callback and the stream's end: let it
    setImmediate(() => this.expire(due));
  }

  /**
   * A deadline passed: `421 4.4.2` and close. Not while the server owes a reply, or a message
   * it may accept would be cut off (the client would send it again); nor does the session
   * deadline cut a DATA that keeps its own deadline (a large message on a slow link): both
   * close right after the message's reply.
   */
  private expire(deadline: Deadline): void {
    if (this.done || this.connection._closing || this.connection._closed) {
      return;
    }
    if (deadline !== 'data' && (this.receiving || this.answering)) {
      this.due ??= deadline;
      return;
    }
    const stream = this.receiving;
    this.closed(deadline);
    this.stop();
    // sent as is (no code of smtp-server's added); a 421 makes smtp-server close the connection
    this.connection.send(421, REPLIES[deadline], false);
    if (stream && !stream.destroyed && !stream.readableEnded) {
      // the half-received message is dropped now, not when the client closes its side
      stream.destroy(
        stream.listenerCount('error') > 0 ? new DataDeadlineError() : undefined,
      );
    }
  }

  private clear(which: 'command' | 'data'): void {
    if (which === 'command') {
      clearTimeout(this.commandTimer);
      this.commandTimer = undefined;
    } else {
      clearTimeout(this.dataTimer);
      this.dataTimer = undefined;
    }
  }
}

/** A timer that does not keep the process alive (the listener does). */
function timer(run: () => void, ms: number): NodeJS.Timeout {
  return setTimeout(run, ms).unref();
}
