// The one place that turns any error into what the SMTP client is told.
import { BridgeError, MalformedMessageError } from './bridge-error.js';

/** An Error shaped for smtp-server: `responseCode` plus a text safe to show a client. */
export interface SmtpReplyError extends Error {
  responseCode: number;
}

/** The reply `code text` as smtp-server takes it from a handler's callback. */
export function smtpReply(code: number, text: string): SmtpReplyError {
  return Object.assign(new Error(text), { responseCode: code });
}

/**
 * Maps an error to the SMTP reply. Texts never carry the API URL, token or response body;
 * anything that is not a BridgeError is a bug and becomes a generic 451 so the sender retries.
 */
export function toSmtpReply(err: unknown): SmtpReplyError {
  if (err instanceof BridgeError) {
    if (err.responseCode === 451) {
      return smtpReply(451, 'Temporary failure, please try again later');
    }
    // the sender's own message: the text names what is wrong with it, nothing of ours
    if (err instanceof MalformedMessageError) {
      return smtpReply(554, err.message);
    }
    if (err.responseCode === 554) {
      return smtpReply(554, 'Message rejected by the destination');
    }
    return smtpReply(err.responseCode, err.message);
  }
  return smtpReply(451, 'Local error in processing, please try again later');
}
