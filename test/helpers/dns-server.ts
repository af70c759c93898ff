// A small authoritative DNS server on loopback for the tests: UDP and TCP on one port, records
// set by the test, failures (an rcode), held answers and dropped queries, and a log of the
// questions asked. A UDP answer over 512 bytes (or the EDNS0 size the query offers) is sent
// truncated (TC), and the resolver asks again over TCP, as c-ares does for a long DKIM key.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import {
  encodeAnswer,
  encodeName,
  encodeRdata,
  encodeResponse,
  FormatError,
  normalizeName,
  parseQuery,
  RCODES,
  RRTYPES,
  typeName,
  type Query,
  type Rcode,
  type RecordType,
  type RecordValue,
} from './dns-wire.js';

export type { Rcode, RecordType, RecordValue } from './dns-wire.js';

/** One question the server received. `name` is lower case, without the trailing dot. */
export interface DnsQueryLog {
  name: string;
  /** `TXT`, `A`, ... or `TYPE<n>`. */
  type: string;
  transport: 'udp' | 'tcp';
  /** The EDNS0 UDP payload size the query offered, or null for a query without OPT. */
  edns: number | null;
}

export interface DnsServerOptions {
  /** TTL of every answer in seconds; default 300. */
  ttl?: number;
  /** UDP payload size the server advertises in its OPT record; default 1232. */
  ednsPayload?: number;
}

type Rule =
  | { kind: 'fail'; rcode: Rcode }
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' };

const PLAIN_UDP_LIMIT = 512;
const MAX_CNAME_CHAIN = 8;

/**
 * The server handle. Emits `query` with a `DnsQueryLog` each time a question arrives (before it
 * is answered), so a test can wait for one with waitFor(..., [[dns, 'query']]).
 */
export class TestDnsServer extends EventEmitter {
  /** `127.0.0.1:PORT`, for `setServers` or the daemon's `auth.dns.servers`. */
  readonly address: string;
  readonly queries: DnsQueryLog[] = [];
  private readonly records = new Map<string, Map<RecordType, RecordValue[]>>();
  private readonly rules = new Map<string, Rule>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sockets = new Set<TcpSocket>();

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly udp: Socket,
    private readonly tcp: Server,
    private readonly options: Required<DnsServerOptions>,
  ) {
    super();
    this.address = `${host}:${port}`;
    udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo));
    udp.on('error', () => {}); // a send to a gone client: nothing to do
    tcp.on('connection', socket => this.onTcp(socket));
  }

  /**
   * Replaces the records of one type at `name`. A TXT value longer than 255 bytes is split into
   * 255-byte character-strings; give a string[] to choose the split. MX values are
   * `"<preference> <exchange>"`. An empty list makes the name exist without that type.
   */
  set(name: string, type: RecordType, values: RecordValue[]): this {
    for (const value of values) encodeRdata(type, value); // throws now for a bad value
    const key = normalizeName(name);
    let byType = this.records.get(key);
    if (!byType) this.records.set(key, (byType = new Map()));
    byType.set(type, [...values]);
    return this;
  }

  /** Removes one type of record at `name`, or the name altogether (then NXDOMAIN). */
  remove(name: string, type?: RecordType): this {
    const key = normalizeName(name);
    if (type) this.records.get(key)?.delete(type);
    else this.records.delete(key);
    return this;
  }

  /** Answers questions for `name` (of `type`, or any type) with `rcode` and no records. */
  fail(name: string, rcode: Rcode, type?: string): this {
    return this.rule(name, type, { kind: 'fail', rcode });
  }

  /** Holds the answers for `name` (of `type`, or any type) `ms` milliseconds. */
  delay(name: string, ms: number, type?: string): this {
    return this.rule(name, type, { kind: 'delay', ms });
  }

  /** Never answers questions for `name` (of `type`, or any type): the resolver times out. */
  drop(name: string, type?: string): this {
    return this.rule(name, type, { kind: 'drop' });
  }

  /** Takes back fail, delay and drop for `name` (of `type`, or all of them). */
  heal(name: string, type?: string): this {
    const key = normalizeName(name);
    for (const ruleKey of [...this.rules.keys()]) {
      if (type ? ruleKey === `${key}|${type}` : ruleKey.startsWith(`${key}|`)) {
        this.rules.delete(ruleKey);
      }
    }
    return this;
  }

  /** How many questions for `name` (and `type`, if given) arrived, over either transport. */
  count(name: string, type?: string): number {
    const key = normalizeName(name);
    return this.queries.filter(
      q => q.name === key && (type === undefined || q.type === type),
    ).length;
  }

  /** Empties the query log. */
  clearQueries(): void {
    this.queries.length = 0;
  }

  /** Forgets every record and rule, and empties the query log. */
  clear(): void {
    this.records.clear();
    this.rules.clear();
    this.clearQueries();
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    await Promise.all([
      new Promise<void>(resolve => this.udp.close(() => resolve())),
      new Promise<void>(resolve => this.tcp.close(() => resolve())),
    ]);
  }

  private rule(name: string, type: string | undefined, rule: Rule): this {
    this.rules.set(`${normalizeName(name)}|${type ?? '*'}`, rule);
    return this;
  }

  private ruleFor(name: string, type: string): Rule | undefined {
    return this.rules.get(`${name}|${type}`) ?? this.rules.get(`${name}|*`);
  }

  /** A name exists if it holds records, or a name below it does (an empty non-terminal). */
  private exists(name: string): boolean {
    if (this.records.has(name)) return true;
    for (const key of this.records.keys()) {
      if (key.endsWith(`.${name}`)) return true;
    }
    return false;
  }

  private answer(q: Query): { rcode: number; answers: Buffer[] } {
    if ((q.flags >> 11) & 0xf) return { rcode: RCODES.NOTIMP, answers: [] };
    if (q.qclass !== 1) return { rcode: RCODES.REFUSED, answers: [] };
    const key = normalizeName(q.name);
    const rule = this.ruleFor(key, typeName(q.type));
    if (rule?.kind === 'fail') {
      return { rcode: RCODES[rule.rcode], answers: [] };
    }
    if (!this.exists(key)) return { rcode: RCODES.NXDOMAIN, answers: [] };
    const answers: Buffer[] = [];
    const wanted = typeName(q.type);
    let owner = encodeName(q.name); // the first owner name as asked, case kept
    let current = key;
    for (let hop = 0; hop < MAX_CNAME_CHAIN; hop++) {
      const byType = this.records.get(current);
      const values = byType?.get(wanted as RecordType);
      if (values) {
        for (const value of values) {
          answers.push(this.rr(owner, q.type, wanted, value));
        }
        break;
      }
      const alias = byType?.get('CNAME')?.[0];
      if (alias === undefined || typeof alias !== 'string') break;
      answers.push(this.rr(owner, RRTYPES.CNAME, 'CNAME', alias));
      current = normalizeName(alias);
      owner = encodeName(alias);
      if (!this.records.has(current)) break; // out of what this server knows
    }
    return { rcode: RCODES.NOERROR, answers };
  }

  private rr(
    owner: Buffer,
    code: number,
    type: string,
    value: RecordValue,
  ): Buffer {
    const rdata = encodeRdata(type as RecordType, value);
    return encodeAnswer({
      name: owner,
      type: code,
      ttl: this.options.ttl,
      rdata,
    });
  }

  /**
   * Parses, logs and answers one query; `send` gets the response (UDP: with its size limit).
   * Nothing is sent for a dropped query or for bytes that are not a DNS header.
   */
  private handle(
    msg: Buffer,
    transport: 'udp' | 'tcp',
    send: (response: Buffer) => void,
  ): void {
    let q: Query;
    try {
      q = parseQuery(msg);
    } catch (err) {
      // no answer to bytes without a header, nor to a response
      if (!(err instanceof FormatError) || msg.length < 12) return;
      if (msg.readUInt16BE(2) & 0x8000) return;
      const head = {
        id: msg.readUInt16BE(0),
        flags: msg.readUInt16BE(2),
        question: Buffer.alloc(0),
      };
      send(encodeResponse(head, RCODES.FORMERR, []));
      return;
    }
    const entry: DnsQueryLog = {
      name: normalizeName(q.name),
      type: typeName(q.type),
      transport,
      edns: q.ednsPayload,
    };
    this.queries.push(entry);
    this.emit('query', entry);
    const rule = this.ruleFor(entry.name, entry.type);
    if (rule?.kind === 'drop') return;
    const reply = () => {
      const { rcode, answers } = this.answer(q);
      const edns = q.ednsPayload === null ? null : this.options.ednsPayload;
      const full = encodeResponse(q, rcode, answers, { edns });
      const limit =
        transport === 'tcp'
          ? 0xffff
          : Math.max(
              PLAIN_UDP_LIMIT,
              Math.min(q.ednsPayload ?? 0, this.options.ednsPayload),
            );
      send(
        full.length <= limit
          ? full
          : encodeResponse(q, rcode, [], { edns, truncated: true }),
      );
    };
    if (rule?.kind !== 'delay') return reply();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      reply();
    }, rule.ms);
    this.timers.add(timer);
  }

  private onUdp(msg: Buffer, rinfo: RemoteInfo): void {
    this.handle(msg, 'udp', response => {
      this.udp.send(response, rinfo.port, rinfo.address);
    });
  }

  /** TCP: each message has a two-byte length in front (RFC 1035 4.2.2); several may follow. */
  private onTcp(socket: TcpSocket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', chunk => {
      pending = Buffer.concat([pending, chunk]);
      while (
        pending.length >= 2 &&
        pending.length >= 2 + pending.readUInt16BE(0)
      ) {
        const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + msg.length);
        this.handle(Buffer.from(msg), 'tcp', response => {
          if (socket.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(response.length);
          socket.write(Buffer.concat([len, response]));
        });
      }
    });
  }
}

/**
 * Starts a server on `127.0.0.1`, UDP and TCP on the same (free) port. Close it with `close()`.
 */
export async function startDnsServer(
  options: DnsServerOptions = {},
): Promise<TestDnsServer> {
  const host = '127.0.0.1';
  const full = {
    ttl: options.ttl ?? 300,
    ednsPayload: options.ednsPayload ?? 1232,
  };
  for (let attempt = 0; ; attempt++) {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const tcp = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      return new TestDnsServer(host, port, udp, tcp, full);
    } catch (err) {
      udp.close();
      // the TCP port was taken: another free UDP port, a few times
      if (
        (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' ||
        attempt >= 20
      ) {
        throw err;
      }
    }
  }
}

/**
 * A node:dns promises Resolver asking only `address` (`127.0.0.1:PORT`). Defaults: timeout
 * 2000 ms, tries 2. Note c-ares never waits less than 250 ms for an answer, and once it has seen
 * three answers from a server it waits 5x their average latency (at least 250 ms), not `timeout`.
 */
export function resolverFor(
  address: string,
  options: { timeout?: number; tries?: number; maxTimeout?: number } = {},
): Resolver {
  const resolver = new Resolver({
    timeout: options.timeout ?? 2000,
    tries: options.tries ?? 2,
    ...(options.maxTimeout === undefined
      ? {}
      : { maxTimeout: options.maxTimeout }),
  });
  resolver.setServers([address]);
  return resolver;
}
