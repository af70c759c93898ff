// The DNS wire format (RFC 1035 section 4, RFC 6891 for OPT) for the test DNS server: parses a
// query and writes a response. Only what the server answers: A, AAAA, CNAME, MX, TXT, PTR, NS.
import { isIPv4, isIPv6 } from 'node:net';

/** Record types by mnemonic; others are reported as `TYPE<n>`. */
export const RRTYPES = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
  CAA: 257,
} as const;

/** The record types the test server can hold. */
export type RecordType = 'A' | 'AAAA' | 'CNAME' | 'MX' | 'TXT' | 'PTR' | 'NS';

export const RCODES = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export type Rcode = keyof typeof RCODES;

export function typeName(code: number): string {
  for (const [name, value] of Object.entries(RRTYPES)) {
    if (value === code) return name;
  }
  return `TYPE${code}`;
}

/** The lower case form of a name without its trailing dot: how the server keys names. */
export function normalizeName(name: string): string {
  return name.replace(/\.$/, '').replace(/[A-Z]/g, c => c.toLowerCase());
}

export interface Query {
  id: number;
  flags: number;
  /** The question name as sent (its case kept), without the trailing dot. */
  name: string;
  type: number;
  qclass: number;
  /** The question section's bytes, echoed in the response. */
  question: Buffer;
  /** The EDNS0 UDP payload size from an OPT record, or null without one. */
  ednsPayload: number | null;
}

export class FormatError extends Error {}

/** Parses a query: one question, names without compression (RFC 1035 4.1.4 is for answers). */
export function parseQuery(msg: Buffer): Query {
  if (msg.length < 12) throw new FormatError('short header');
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const qdcount = msg.readUInt16BE(4);
  const arcount = msg.readUInt16BE(10);
  if (flags & 0x8000) throw new FormatError('not a query');
  if (qdcount !== 1) throw new FormatError(`${qdcount} questions`);
  const labels: string[] = [];
  let pos = 12;
  for (;;) {
    const len = msg[pos];
    if (len === undefined) throw new FormatError('name runs past the end');
    pos += 1;
    if (len === 0) break;
    if (len > 63) throw new FormatError('compressed or bad label');
    if (pos + len > msg.length) throw new FormatError('label past the end');
    labels.push(msg.toString('latin1', pos, pos + len));
    pos += len;
  }
  if (pos - 12 > 255) throw new FormatError('name over 255 bytes');
  if (pos + 4 > msg.length) throw new FormatError('question past the end');
  const type = msg.readUInt16BE(pos);
  const qclass = msg.readUInt16BE(pos + 2);
  pos += 4;
  const question = msg.subarray(12, pos);
  // the additional section (after empty answer and authority sections): look for OPT
  let ednsPayload: number | null = null;
  if (msg.readUInt16BE(6) === 0 && msg.readUInt16BE(8) === 0) {
    for (let i = 0; i < arcount && pos + 11 <= msg.length; i++) {
      if (msg[pos] !== 0) break; // OPT has the root name; skip parsing anything else
      const rrtype = msg.readUInt16BE(pos + 1);
      const rdlen = msg.readUInt16BE(pos + 9);
      if (rrtype === RRTYPES.OPT) ednsPayload = msg.readUInt16BE(pos + 3);
      pos += 11 + rdlen;
    }
  }
  return {
    id,
    flags,
    name: labels.join('.'),
    type,
    qclass,
    question,
    ednsPayload,
  };
}

/** A name in wire form (no compression). */
export function encodeName(name: string): Buffer {
  const trimmed = name.replace(/\.$/, '');
  const parts: Buffer[] = [];
  if (trimmed !== '') {
    for (const label of trimmed.split('.')) {
      const bytes = Buffer.from(label, 'latin1');
      if (bytes.length === 0 || bytes.length > 63) {
        throw new Error(`bad DNS label in ${JSON.stringify(name)}`);
      }
      parts.push(Buffer.from([bytes.length]), bytes);
    }
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > 255) throw new Error(`DNS name too long: ${name}`);
  return wire;
}

function ipv4Bytes(value: string): Buffer {
  return Buffer.from(value.split('.').map(Number));
}

function ipv6Bytes(value: string): Buffer {
  // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups first
  const text = value.replace(/(\d+\.\d+\.\d+\.\d+)$/, v4 => {
    const b = ipv4Bytes(v4);
    return `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  });
  const [head = '', tail] = text.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros = new Array<string>(8 - left.length - right.length).fill('0');
  const out = Buffer.alloc(16);
  [...left, ...zeros, ...right].forEach((g, i) =>
    out.writeUInt16BE(parseInt(g, 16), i * 2),
  );
  return out;
}

/** Splits a TXT string into character-strings of at most 255 bytes. */
export function txtChunks(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) {
    chunks.push(bytes.subarray(i, i + 255));
  }
  return chunks.length ? chunks : [Buffer.alloc(0)];
}

/** A record value: a string, or for TXT the character-strings of one record. */
export type RecordValue = string | string[];

/** The RDATA of one record; throws for a value that does not fit the type. */
export function encodeRdata(type: RecordType, value: RecordValue): Buffer {
  if (type === 'TXT') {
    const chunks = Array.isArray(value)
      ? value.map(s => {
          const b = Buffer.from(s, 'utf8');
          if (b.length > 255) throw new Error('TXT character-string over 255');
          return b;
        })
      : txtChunks(value);
    return Buffer.concat(chunks.flatMap(c => [Buffer.from([c.length]), c]));
  }
  if (Array.isArray(value)) throw new Error(`${type} value must be a string`);
  switch (type) {
    case 'A':
      if (!isIPv4(value)) throw new Error(`not an IPv4 address: ${value}`);
      return ipv4Bytes(value);
    case 'AAAA':
      if (!isIPv6(value)) throw new Error(`not an IPv6 address: ${value}`);
      return ipv6Bytes(value);
    case 'MX': {
      const m = /^(\d+)\s+(\S+)$/.exec(value);
      if (!m) {
        throw new Error(`MX value must be "<preference> <exchange>": ${value}`);
      }
      const pref = Buffer.alloc(2);
      pref.writeUInt16BE(Number(m[1]));
      return Buffer.concat([pref, encodeName(m[2]!)]);
    }
    case 'CNAME':
    case 'PTR':
    case 'NS':
      return encodeName(value);
  }
}

export interface Answer {
  /** Wire form of the owner name. */
  name: Buffer;
  type: number;
  ttl: number;
  rdata: Buffer;
}

export function encodeAnswer(a: Answer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(a.type, 0);
  fixed.writeUInt16BE(1, 2); // class IN
  fixed.writeUInt32BE(a.ttl, 4);
  fixed.writeUInt16BE(a.rdata.length, 8);
  return Buffer.concat([a.name, fixed, a.rdata]);
}

/**
 * A response to `q`: authoritative, RD copied. With `edns` an OPT record advertising that payload
 * size is added. `truncated` sets TC (and the caller leaves out the answers).
 */
export function encodeResponse(
  q: Pick<Query, 'id' | 'flags' | 'question'>,
  rcode: number,
  answers: Buffer[],
  options: { truncated?: boolean; edns?: number | null } = {},
): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  let flags = 0x8000 | 0x0400 | (q.flags & 0x7800) | (q.flags & 0x0100); // QR AA opcode RD
  if (options.truncated) flags |= 0x0200;
  header.writeUInt16BE(flags | (rcode & 0xf), 2);
  header.writeUInt16BE(q.question.length ? 1 : 0, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(0, 8);
  const opt: Buffer[] = [];
  if (options.edns != null) {
    const rr = Buffer.alloc(11);
    rr.writeUInt16BE(RRTYPES.OPT, 1);
    rr.writeUInt16BE(options.edns, 3); // CLASS: our UDP payload size; TTL, RDLEN 0
    opt.push(rr);
  }
  header.writeUInt16BE(opt.length, 10);
  return Buffer.concat([header, q.question, ...answers, ...opt]);
}
