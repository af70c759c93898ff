// The SMTP envelope of one message, copied out of the session before anything else sees it.

export interface Envelope {
  /** our id for this message (the "queued as" id), unique per accepted message */
  id: string;
  /** MAIL FROM, or null for the null sender <> */
  mailFrom: string | null;
  /** RCPT TO addresses, in order, each matched by a route */
  rcptTo: string[];
  remoteAddress?: string;
  clientHostname?: string;
  helo?: string;
  secure?: boolean;
  /** ISO 8601 time the message was received */
  receivedAt: string;
}
