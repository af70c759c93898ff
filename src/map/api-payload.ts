// The JSON body of POST /api/v1/message, as the API documents it (attachments by reference).

/** A lazy reference to an attachment's decoded bytes: a file, read only when the body is sent. */
export interface AttachmentFile {
  path: string;
  /** bytes in the file */
  size: number;
}

/**
 * One attachment. In the body as mapped, `file` is an AttachmentFile; in the JSON as posted
 * (`ApiPayload<string>`) it is the base64 of the decoded bytes.
 */
export interface ApiAttachment<File = AttachmentFile> {
  name: string;
  file: File;
}

/**
 * The create-message body; empty values are left out, route `fields` add more keys.
 * src/api/payload-stream.ts turns it into the JSON that is posted.
 */
export interface ApiPayload<File = AttachmentFile> {
  from?: string;
  to?: string;
  cc?: string;
  bcc?: string;
  subject?: string;
  content?: string;
  attachments?: Array<ApiAttachment<File>>;
  ext_msg_id: string;
  reply_to_ext_msg_id?: string;
  mailbox_id?: string;
  thread_id?: string;
  priority?: number;
  [field: string]: unknown;
}
