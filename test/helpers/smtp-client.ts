// Real SMTP clients for tests: nodemailer for whole messages, a raw socket for exact dialogues.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';

export interface SendResult {
  /** the final reply line, e.g. "250 2.6.0 OK: delivered as ..." */
  response: string;
  /** the reply code: 250 on success, else the refusal's code */
  code: number;
}

/**
 * Sends a raw message with nodemailer's SMTP transport; refusals resolve, not reject. In clear
 * text by default; `transport` adds or overrides options (TLS, AUTH).
 */
export async function sendRaw(options: {
  port: number;
  from?: string;
  to: string[];
  raw: string | Buffer;
  transport?: SMTPTransport.Options;
}): Promise<SendResult> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: options.port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 5000,
    ...options.transport,
  });
  try {
    const info = await transport.sendMail({
      envelope: { from: options.from ?? 'sender@example.net', to: options.to },
      raw: options.raw,
    });
    return { response: info.response, code: Number(info.response.slice(0, 3)) };
  } catch (err) {
    const e = err as {
      responseCode?: number;
      response?: string;
      message: string;
    };
    if (e.responseCode === undefined) throw err;
    return { response: e.response ?? e.message, code: e.responseCode };
  } finally {
    transport.close();
  }
}

/**
 * Speaks SMTP line by line over a socket: sends each command after the previous reply and
 * returns every reply (multi-line replies joined), greeting first.
 */
export async function smtpDialog(
  port: number,
  commands: string[],
): Promise<string[]> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  const replies: string[] = [];
  let buffer = '';
  let current: string[] = [];
  const waiters: Array<() => void> = [];
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 2);
      current.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        replies.push(current.join('\n'));
        current = [];
        waiters.shift()?.();
      }
    }
  });
  const nextReply = (count: number) =>
    new Promise<void>((resolve, reject) => {
      if (replies.length >= count) return resolve();
      const onClose = () =>
        reject(new Error(`connection closed after ${replies.length} replies`));
      socket.once('close', onClose);
      const check = () => {
        if (replies.length >= count) {
          socket.off('close', onClose);
          resolve();
        } else waiters.push(check);
      };
      waiters.push(check);
    });
  await once(socket, 'connect');
  await nextReply(1);
  for (const command of commands) {
    socket.write(command.endsWith('\r\n') ? command : `${command}\r\n`);
    // DATA content is one "command" ending with "\r\n.\r\n"; it also gets one reply
    await nextReply(replies.length + 1);
  }
  socket.end();
  return replies;
}

/** A raw SMTP connection that gathers what the server says. */
export interface RawSession {
  socket: Socket;
  /** what the server said since the last clear() */
  replies(): string;
  /** Waits for a reply matching `pattern` among those since the last clear(). */
  waitFor(pattern: RegExp): Promise<void>;
  /** Forgets the replies so far. */
  clear(): void;
}

/** Connects over a raw socket and waits for the greeting (cleared, like everything before). */
export async function openSession(port: number): Promise<RawSession> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let text = '';
  socket.on('data', (chunk: string) => (text += chunk));
  const session: RawSession = {
    socket,
    replies: () => text,
    async waitFor(pattern) {
      while (!pattern.test(text)) await once(socket, 'data');
    },
    clear: () => (text = ''),
  };
  await session.waitFor(/^220 /m);
  session.clear();
  return session;
}

/**
 * Opens a session over a raw socket up to the 354 of DATA (from jane@example.net to
 * support@example.com), for tests that send the body themselves, slowly or cut short.
 * `waitFor(pattern)` waits for a reply matching it among those after the 354.
 */
export async function openDataSession(port: number): Promise<RawSession> {
  const session = await openSession(port);
  session.socket.write(
    'EHLO client.example.net\r\nMAIL FROM:<jane@example.net>\r\n' +
      'RCPT TO:<support@example.com>\r\nDATA\r\n',
  );
  await session.waitFor(/^354 /m);
  session.clear();
  return session;
}

/** A minimal RFC 5322 message with CRLF line ends. */
export function makeMessage(
  headers: Record<string, string>,
  body = 'Hello.\r\n',
): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
