// MAIL FROM: TLS and AUTH when the configuration requires them (530), then flow control.
import type { SMTPServerOptions } from 'smtp-server';
import { smtpReply } from '../errors/to-smtp-reply.js';
import type { RcptCommands } from './rcpt-commands.js';
import { logRefusal } from './refusal-log.js';
import type { SmtpDeps } from './smtp-deps.js';

/**
 * onMailFrom: a new transaction. Its refusals are SMTP policy (smtpReply directly); while
 * delivery lags behind, the transaction waits for it a little before its 250.
 */
export function mailFromHandler(
  deps: SmtpDeps,
  rcpts: RcptCommands | undefined,
): NonNullable<SMTPServerOptions['onMailFrom']> {
  const { config, log } = deps;
  return (address, session, callback) => {
    // a new transaction: its RCPT commands are counted from here (LMTP's replies)
    rcpts?.begin(session);
    if (config.smtp.tls.required && !session.secure) {
      // 530 5.7.0, as Postfix's smtpd_tls_security_level = encrypt
      logRefusal(deps, 'sender refused: STARTTLS required', session, {
        command: 'MAIL',
        reason: 'tls',
        address: address.address,
        code: 530,
      });
      return callback(smtpReply(530, 'Must issue a STARTTLS command first'));
    }
    if (config.smtp.auth.required && !session.user) {
      logRefusal(deps, 'sender refused: authentication required', session, {
        command: 'MAIL',
        reason: 'auth',
        address: address.address,
        code: 530,
      });
      return callback(smtpReply(530, 'Authentication required'));
    }
    // flow control: while delivery lags behind, a new transaction waits for it a little
    const wait = deps.intake.waitForRoom(config.smtp.inFlowDelayMs);
    if (!wait) return callback();
    const started = process.hrtime.bigint();
    log.debug('transaction waits for delivery to catch up', {
      sessionId: session.id,
      waiting: deps.intake.waiting,
    });
    void wait.then(() => {
      deps.metrics.flowDelaySeconds.observe(
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      callback();
    });
  };
}
