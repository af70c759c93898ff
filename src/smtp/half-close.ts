// Replies to a client that half-closed (TCP FIN) after pipelining its final dot and QUIT, as
// Exim's smtp transport does: the 250 of a message already stored must still reach it.
import { Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';

/** net.Socket's own readyState getter */
const readyState = Object.getOwnPropertyDescriptor(
  Socket.prototype,
  'readyState',
);

/**
 * Lets the server answer a half-closed client; the listener must allow half-open sockets
 * (`allowHalfOpen`), or Node ends our side at the client's FIN and every reply still owed is
 * lost. At the FIN, a session that still owes replies (a whole message awaiting its reply, or
 * commands read but not yet answered) keeps its side open: the replies go out, and the QUIT a
 * client sends before its FIN closes it (else the idle timeout does). Any other session is
 * ended at once, as Node would (a client gone mid-message, or idle).
 *
 * NOTE: smtp-server writes a reply only while the socket's readyState is 'open'
 * (smtp-connection.js send()), which a half-closed socket is not ('writeOnly'): a plain socket
 * is shown as 'open' while it can still be written to. A socket a TLS layer wraps keeps its
 * own state and is ended at the FIN, as before.
 */
export function answerHalfClosedClients(server: SMTPServer): void {
  const getter = readyState?.get;
  if (!getter) return;
  server.server.prependListener('connection', (socket: Socket) => {
    Object.defineProperty(socket, 'readyState', {
      configurable: true,
      get(this: Socket): string {
        const state = getter.call(this) as string;
        return state === 'writeOnly' ? 'open' : state;
      },
    });
    socket.on('end', () => {
      if (!owesReplies(server, socket) && !socket.writableEnded) socket.end();
    });
  });
}

/** Whether the session on `socket` has read what it has not answered yet. */
function owesReplies(server: SMTPServer, socket: Socket): boolean {
  for (const connection of server.connections) {
    if (connection._socket !== socket) continue;
    const message = connection._dataStream;
    // the final dot was read: the message's reply is still to come
    if (message && message.writableEnded) return true;
    // commands read, still waiting for their turn (pipelined behind a pending reply)
    const parser = connection._parser;
    return !message && !!parser && parser.writableLength > 0;
  }
  return false;
}
