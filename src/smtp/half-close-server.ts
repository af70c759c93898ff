// smtp-server's connection, adjusted where its replies go wrong: TCP half-close honoured (a
// client that ends its side after the dot or QUIT, as Exim does, still gets every reply it is
// owed), a reply text's own enhanced status code kept (enhanced-code.ts), and no fixed pause
// before the greeting (smtp.greetingDelayMs is that pause), and a DATA reader that searches by
// indexOf (data-scan.ts).
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer } from 'smtp-server';
import {
  SMTPConnection,
  type SMTPConnectionOptions,
} from 'smtp-server/lib/smtp-connection.js';
import { feedDataStream, followsLibrary } from './data-scan.js';
import { enhancedContext } from './enhanced-code.js';

/**
 * A connection that answers after the client's FIN and closes once it has answered it all.
 *
 * smtp-server alone loses those replies twice over: without `allowHalfOpen` Node ends our side
 * as soon as the client's FIN is read, before the onData callback answers the message; and
 * its `send()` writes only while the socket says `readyState === 'open'`, which a socket that
 * has read the FIN reports as `'writeOnly'` even though it can still write.
 */
class HalfCloseConnection extends SMTPConnection {
  /**
   * smtp-server's init() without its fixed 100 ms before the greeting (its early-talker test,
   * which capped 20 parallel one-message senders near 190 messages a second): that pause is
   * smtp.greetingDelayMs now, taken in onConnect (on-connect.ts), where a client that talks
   * before the greeting still hears `421 You talk too soon`.
   */
  override init(): void {
    this._setListeners(() => {
      const { maxClients } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        return this.send(
          421,
          `${this.name} Too many connected clients, try again in a moment`,
          false,
        );
      }
      this.connectionReady();
    });
  }

  override send(
    code: number,
    data?: string | string[] | null,
    context?: string | false,
  ): void {
    // a text with its own enhanced status code keeps it (enhanced-code.ts)
    context = enhancedContext(code, data, context);
    const socket: Socket | TLSSocket = this._socket;
    this.corkTurn(socket);
    if (socket.readyState !== 'writeOnly') {
      return super.send(code, data, context);
    }
    // NOTE: the client has sent its FIN and our side is still open: smtp-server's check is
    // meant to skip a closed socket, so it is told 'open' for this one write
    Object.defineProperty(socket, 'readyState', {
      value: 'open',
      configurable: true,
    });
    try {
      super.send(code, data, context);
    } finally {
      delete (socket as { readyState?: string }).readyState;
    }
  }

  /**
   * Replies made within one turn of the event loop go out in one write: a pipelining client's
   * MAIL, RCPT and DATA, or the last message's reply and QUIT's. A write to a socket was the
   * main thread's largest cost with one connection per message (0.46 of 2.15 ms a message).
   * The socket's end() (close) sends what is corked.
   */
  private corkTurn(socket: Socket | TLSSocket): void {
    if (socket.writableCorked > 0 || socket.destroyed) return;
    socket.cork();
    setImmediate(() => socket.uncork());
  }

  override _createParser(): ReturnType<SMTPConnection['_createParser']> {
    const parser = super._createParser();
    // the DATA reader's search for a line-leading dot by indexOf (data-scan.ts), for the
    // library's reader it follows only
    if (followsLibrary) parser._feedDataStream = feedDataStream;
    // the socket's pipe ends the parser when the client's FIN is read, and the parser finishes
    // only once every command before it is answered (after DATA, once onData has called back):
    // nothing more can come, so the connection closes as after QUIT. close() twice is harmless
    parser.once('finish', () => this.close());
    return parser;
  }
}

/**
 * smtp-server's SMTPServer whose sessions allow half-open sockets and use
 * {@link HalfCloseConnection} (RFC 5321 4.1.1.10: the server closes once it has sent its
 * replies). Not the listener's `allowHalfOpen`: before a session starts (a PROXY header, an
 * implicit TLS handshake) nothing is owed, and a peer that leaves then must be closed at once.
 */
export class HalfCloseSmtpServer extends SMTPServer {
  /** smtp-server's connect(), with half-open allowed and our connection class. */
  override connect(
    socket: Socket | TLSSocket,
    socketOptions?: SMTPConnectionOptions | null,
  ): void {
    // read by Node when the FIN arrives (duplex.allowHalfOpen); a STARTTLS socket inherits it
    socket.allowHalfOpen = true;
    const connection = new HalfCloseConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', err => this._onError(err));
    connection.on('connect', data => this._onClientConnect(data));
    connection.init();
  }
}
