// The stand-in API of a fuzz run (node:http, in the fuzzer's process): counts the POSTs it took,
// answers most 204, one in 20 bodies 422 (the message goes dead) and one in 20 503 the first time
// (retried, then 204), by a hash of the Idempotency-Key so that a run is repeatable; and checks
// each body against the contract (valid JSON, no control characters in header-derived fields,
// no empty values, attachment names without paths or controls).
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One body that broke the contract: what, and a short excerpt to recognise it by. */
export interface PayloadProblem {
  problem: string;
  excerpt: string;
}

/** Fields taken from headers: the contract says none carries a control character. */
const HEADER_FIELDS = [
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'ext_msg_id',
  'reply_to_ext_msg_id',
  'thread_id',
];

// eslint-disable-next-line no-control-regex -- control characters are exactly what is checked
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** The attachment-name rule: no control or bidi character, no path separator. */
const NAME_FORBIDDEN =
  // eslint-disable-next-line no-control-regex -- control characters are what is checked
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069/\\]/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** What a body breaks of the contract; [] when nothing. */
export function payloadProblems(text: string): string[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return ['the body is not JSON'];
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return ['the body is not a JSON object'];
  }
  const fields = body as Record<string, unknown>;
  const problems: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === '') problems.push(`${key} is an empty string`);
    if (HEADER_FIELDS.includes(key)) {
      if (typeof value !== 'string') problems.push(`${key} is not a string`);
      else if (CONTROL.test(value)) {
        problems.push(`${key} has a control character`);
      }
    }
  }
  if (typeof fields.ext_msg_id !== 'string') {
    problems.push('ext_msg_id is missing');
  }
  const attachments = fields.attachments;
  if (attachments !== undefined) {
    if (!Array.isArray(attachments)) problems.push('attachments is not a list');
    else {
      for (const attachment of attachments as Array<Record<string, unknown>>) {
        const { name, file } = attachment ?? {};
        if (typeof name !== 'string' || name === '') {
          problems.push('an attachment has no name');
        } else if (NAME_FORBIDDEN.test(name)) {
          problems.push(
            'an attachment name has a path, control or bidi character',
          );
        }
        if (typeof file !== 'string' || !BASE64.test(file)) {
          problems.push('an attachment file is not base64');
        }
      }
    }
  }
  return problems;
}

/** FNV-1a of a string: the answer a key gets, the same in every run. */
export function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}

/** What the stand-in answers a POST with this Idempotency-Key, `seen` times before. */
export function answerFor(key: string, seen: number): 204 | 422 | 503 {
  const bucket = keyHash(key) % 20;
  if (bucket === 0) return 422;
  if (bucket === 1 && seen === 0) return 503;
  return 204;
}

export class StandInApi {
  /** POSTs answered 2xx: messages posted */
  posted = 0;
  /** POSTs answered 422: messages that go dead */
  refused = 0;
  /** POSTs answered 503: retried */
  unavailable = 0;
  /** other requests (not a POST, no Idempotency-Key) */
  strays = 0;
  /** bodies that broke the contract (the first 50 of each problem kept) */
  readonly problems: PayloadProblem[] = [];
  readonly problemCounts = new Map<string, number>();
  url = '';
  private readonly seen = new Map<string, number>();
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        status => {
          const body =
            status === 422
              ? JSON.stringify({
                  errors: [
                    { code: 'fuzz', message: 'refused by the stand-in' },
                  ],
                })
              : '';
          res.writeHead(
            status,
            body ? { 'content-type': 'application/json' } : {},
          );
          res.end(body);
        },
        () => res.writeHead(400).end(),
      );
    });
    this.server.keepAliveTimeout = 60_000;
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/api/v1/message`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>(done => this.server.close(() => done()));
  }

  private async handle(req: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const key = req.headers['idempotency-key'];
    if (req.method !== 'POST' || typeof key !== 'string') {
      this.strays++;
      return 400;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    for (const problem of payloadProblems(text)) this.note(problem, text);
    const seen = this.seen.get(key) ?? 0;
    this.seen.set(key, seen + 1);
    const status = answerFor(key, seen);
    if (status === 204) this.posted++;
    else if (status === 422) this.refused++;
    else this.unavailable++;
    return status;
  }

  private note(problem: string, text: string): void {
    const count = (this.problemCounts.get(problem) ?? 0) + 1;
    this.problemCounts.set(problem, count);
    if (count <= 50) {
      this.problems.push({ problem, excerpt: text.slice(0, 300) });
    }
  }
}
