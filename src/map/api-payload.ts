// The JSON body of POST /api/v1/message, as the API documents it.

export interface ApiAttachment {
  name: string;
  /** base64 of the decoded bytes */
  file: string;
}

/** The create-message body; empty values are left out, route `fields` add more keys. */
export interface ApiPayload {
  from?: string;
  to?: string;
  cc?: string;
  bcc?: string;
  subject?: string;
  content?: string;
  attachments?: ApiAttachment[];
  ext_msg_id: string;
  reply_to_ext_msg_id?: string;
  mailbox_id?: string;
  thread_id?: string;
  priority?: number;
  [field: string]: unknown;
}
