// What the rest of the pipeline knows of a message: our own shape, free of mailparser's types.

export interface MailAddress {
  /** the address, as written (may be empty for a bare group or a broken header) */
  address: string;
  /** the decoded display name, or '' */
  name: string;
}

export interface ParsedAttachment {
  /** decoded filename, or a generated `attachment-N.ext` */
  filename: string;
  /** true when `filename` is generated (the part had no name of its own) */
  generatedName?: boolean;
  contentType: string;
  /** the file holding the decoded bytes; removed by the message's `dispose()` */
  path: string;
  /** the number of decoded bytes */
  size: number;
  /** Content-ID without brackets, for inline parts */
  contentId?: string;
  /** Content-Location as written (MHTML names its images by it), if any */
  contentLocation?: string;
  /**
   * The `data:` URL of an image the HTML shows, within the inline-image budget
   * (parse/inline-images.ts); the image stays an attachment too
   */
  dataUrl?: string;
}

export interface ParsedMessage {
  from?: MailAddress;
  to: MailAddress[];
  cc: MailAddress[];
  /** the Reply-To header's addresses (a route with fromReplyTo may post one as `from`) */
  replyTo?: MailAddress[];
  subject?: string;
  text?: string;
  html?: string;
  /** the Message-ID header as written (unnormalised), if any */
  messageId?: string;
  /** the In-Reply-To header as written, if any */
  inReplyTo?: string;
  /** every id of the References header, in order */
  references: string[];
  priority: 'high' | 'normal' | 'low';
  attachments: ParsedAttachment[];
  /** SHA-256 (hex) of the raw message bytes: the seed of a generated Message-ID */
  digest: string;
  /** size of the raw message in bytes */
  size: number;
  /**
   * Removes the attachment files. Call it once the message has been delivered or given up on,
   * on every path; it never rejects and may be called more than once.
   */
  dispose(): Promise<void>;
}
