// smtp-server's own refusals, which reach no handler of ours: a SIZE over the limit at MAIL FROM
// (552), a recipient past smtp.maxRecipients (452), a client past smtp.maxClients and one that
// talks before the greeting (421). Read off its protocol log, where every command and reply
// passes whatever the log level, to be logged and counted as our own refusals are.
import type { SMTPServer } from 'smtp-server';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { logRefusal, type RefusedSession } from './refusal-log.js';

type Connection = SMTPServer['connections'] extends Set<infer C> ? C : never;

interface ProtocolMeta {
  tnx?: unknown;
  cid?: unknown;
  command?: unknown;
}

/** smtp-server's 421 texts for a session it refuses itself, and the reason logged. */
const OWN_421 = [
  ['Too many connected clients', 'max_clients'],
  ['You talk too soon', 'early_talker'],
] as const;

/** The address of a MAIL FROM or RCPT TO line (what is between the angle brackets). */
function commandAddress(line: string | undefined): string | undefined {
  return /^[A-Z]+\s+(?:FROM|TO)\s*:\s*<([^>]*)>/i.exec(line ?? '')?.[1];
}

/** Watches the commands and replies smtp-server logs, per connection. */
export class OwnReplies {
  /** each open connection's last command: its name, and its line when it was MAIL or RCPT */
  private readonly last = new Map<string, { command: string; line?: string }>();

  constructor(
    private readonly deps: {
      log: Logger;
      metrics: Metrics;
      maxSize: number;
      /** the server's open connections, for the client's address and HELO name */
      connections: () => Iterable<Connection>;
    },
  ) {}

  /** smtp-server's logger call: (meta, 'C:' | 'S:', line). */
  observe(meta: unknown, fmt: unknown, line: unknown): void {
    const { tnx, cid, command } = (meta ?? {}) as ProtocolMeta;
    if (typeof cid !== 'string') return;
    // smtp-server logs every connection's close (at info)
    if (tnx === 'close') {
      this.last.delete(cid);
      return;
    }
    if (typeof line !== 'string') return;
    if (tnx === 'command' && fmt === 'C:' && typeof command === 'string') {
      this.last.set(
        cid,
        command === 'MAIL' || command === 'RCPT'
          ? { command, line: line.slice(0, 512) }
          : { command },
      );
      return;
    }
    if (tnx !== 'send' || fmt !== 'S:') return;
    this.reply(cid, line);
  }

  private reply(cid: string, line: string): void {
    const last = this.last.get(cid);
    if (last?.command === 'MAIL' && line.startsWith('552 ')) {
      const declared = /\bSIZE=(\d+)/i.exec(last.line ?? '')?.[1];
      logRefusal(
        this.deps,
        'message refused at MAIL FROM: SIZE over the limit',
        this.session(cid),
        {
          command: 'MAIL',
          reason: 'size',
          address: commandAddress(last.line),
          code: 552,
        },
        {
          size: declared === undefined ? undefined : Number(declared),
          maxMessageSize: this.deps.maxSize,
        },
      );
    } else if (last?.command === 'RCPT' && line.startsWith('452 ')) {
      logRefusal(
        this.deps,
        'recipient refused: too many recipients',
        this.session(cid),
        {
          command: 'RCPT',
          reason: 'too_many',
          address: commandAddress(last.line),
          code: 452,
        },
      );
    } else if (line.startsWith('421 ')) {
      const own = OWN_421.find(([text]) => line.includes(text));
      if (!own) return;
      logRefusal(this.deps, 'session refused', this.session(cid), {
        command: 'CONNECT',
        reason: own[1],
        code: 421,
      });
    }
  }

  /** The session of an open connection (its id alone once it is gone). */
  private session(cid: string): RefusedSession {
    for (const c of this.deps.connections()) {
      if (c.id !== cid) continue;
      return {
        id: cid,
        remoteAddress: c.session.remoteAddress ?? c.remoteAddress,
        hostNameAppearsAs: c.session.hostNameAppearsAs ?? c.hostNameAppearsAs,
      };
    }
    return { id: cid };
  }
}
