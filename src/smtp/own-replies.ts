// smtp-server's own refusals, which reach no handler of ours: a SIZE over the limit at MAIL FROM
// (552) and a recipient past smtp.maxRecipients (452). Read off its protocol log, where every
// command and reply passes whatever the log level, to be counted (and the 552 logged).
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

interface ProtocolMeta {
  tnx?: unknown;
  cid?: unknown;
  command?: unknown;
}

/** Watches the commands and replies smtp-server logs, per connection. */
export class OwnReplies {
  /** each open connection's last command: its name, and its line when it was MAIL */
  private readonly last = new Map<string, { command: string; line?: string }>();

  constructor(
    private readonly deps: { log: Logger; metrics: Metrics; maxSize: number },
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
        command === 'MAIL'
          ? { command, line: line.slice(0, 512) }
          : { command },
      );
      return;
    }
    if (tnx !== 'send' || fmt !== 'S:') return;
    const last = this.last.get(cid);
    if (last?.command === 'MAIL' && line.startsWith('552 ')) {
      this.deps.metrics.mailRefused.inc({ reason: 'size' });
      const declared = /\bSIZE=(\d+)/i.exec(last.line ?? '')?.[1];
      this.deps.log.info('message refused at MAIL FROM: SIZE over the limit', {
        sessionId: cid,
        size: declared === undefined ? undefined : Number(declared),
        maxMessageSize: this.deps.maxSize,
        code: 552,
      });
    } else if (last?.command === 'RCPT' && line.startsWith('452 ')) {
      this.deps.metrics.rcptRefused.inc({ reason: 'too_many' });
    }
  }
}
