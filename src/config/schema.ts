// The configuration schema: one zod schema validates every key at start and in check-config.
import { isIP } from 'node:net';
import { z } from 'zod';
import { networkError } from './networks.js';
import { subjectPatternProblem } from './subject-pattern.js';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();
const priorityValue = z.number().int().nullable();
const network = z.string().superRefine((entry, ctx) => {
  const problem = networkError(entry);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Body fields a route may not set: the mapper owns them. */
export const RESERVED_FIELDS = [
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'content',
  'attachments',
  'ext_msg_id',
  'reply_to_ext_msg_id',
  'mailbox_id',
  'thread_id',
] as const;

const routeSchema = z
  .strictObject({
    match: z
      .string()
      .trim()
      .toLowerCase()
      .regex(
        /^(\*|\*@[^@\s]+|[^@\s*]+@[^@\s*]+)$/,
        'must be an address, "*@domain" or "*"',
      ),
    mailbox_id: z.string().min(1).optional(),
    thread_from_subaddress: z.boolean().default(false),
    /** a regex whose first capturing group in the subject is thread_id (map/thread-from-subject.ts) */
    threadFromSubject: z
      .string()
      .min(1)
      .superRefine((pattern, ctx) => {
        const problem = subjectPatternProblem(pattern);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    /** from = the Reply-To address when it names exactly one (absent: false) */
    fromReplyTo: z.boolean().optional(),
    fields: z
      .record(z.string(), z.unknown())
      .default({})
      .refine(
        fields => !RESERVED_FIELDS.some(key => key in fields),
        `may not set ${RESERVED_FIELDS.join(', ')} (the mapper fills them)`,
      ),
    /** a "*" route meant for production (absent: false; see load-config.ts) */
    catchAll: z.boolean().optional(),
    /** this route takes postmaster mail (absent: false; see routing/resolve-route.ts) */
    postmaster: z.boolean().optional(),
    /**
     * SPF/DKIM/DMARC: what the route does with the sender's judgement (auth/verdict.ts). Absent
     * (as in entries spooled before it existed): record.
     */
    senderAuth: z.enum(['off', 'record', 'enforce']).optional(),
    /** content keeps the new text of a reply only (map/strip-quotes.ts; absent: false) */
    stripQuotedReplies: z.boolean().optional(),
    /**
     * Auto-replies, bounces and read receipts (mail/noise.ts): deliver, hold or drop. Absent (as
     * in entries spooled before it existed): hold (pipeline/route-policy.ts).
     */
    autoReplies: z.enum(['deliver', 'hold', 'drop']).optional(),
    /** List and bulk mail: deliver, hold or drop. Absent: deliver. */
    bulk: z.enum(['deliver', 'hold', 'drop']).optional(),
  })
  .refine(route => !route.catchAll || route.match === '*', {
    message: 'only a "*" route can be a catch-all',
    path: ['catchAll'],
  });

/** The route table: at most one route takes postmaster mail. */
const routesSchema = z.array(routeSchema).superRefine((routes, ctx) => {
  const first = routes.findIndex(route => route.postmaster);
  const second = routes.findIndex((r, i) => i > first && r.postmaster);
  if (first >= 0 && second >= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `only one route may take postmaster mail (routes.${first} does already)`,
      path: [second, 'postmaster'],
    });
  }
});

/** A DNS server as node:dns takes it: an IP address, with a port if not 53. */
const dnsServer = z
  .string()
  .refine(
    value => dnsServerAddress(value) !== null,
    'must be an IP address, with :port if not 53 ([IPv6]:port)',
  );

/** The address of a `host[:port]` DNS server entry, or null when it is not one. */
export function dnsServerAddress(value: string): string | null {
  if (isIP(value) !== 0) return value;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value);
  const plain = /^([^:]+):(\d{1,5})$/.exec(value);
  const [, host, port] = bracketed ?? plain ?? [];
  if (!host || isIP(host) === 0) return null;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    return null;
  }
  return host;
}

export const configSchema = z.strictObject({
  smtp: z
    .strictObject({
      host: z.string().min(1),
      port,
      hostname: z.string().min(1).nullable(),
      maxMessageSize: positiveInt,
      maxRecipients: positiveInt,
      maxClients: positiveInt,
      greetingDelayMs: z.number().int().nonnegative().max(60_000),
      socketTimeoutMs: positiveInt,
      commandTimeoutMs: positiveInt,
      dataTimeoutMs: positiveInt,
      dataMinRate: z.number().int().nonnegative(),
      sessionTimeoutMs: positiveInt,
      closeTimeoutMs: z.number().int().nonnegative(),
      inFlowDelayMs: z.number().int().nonnegative(),
      allowedNetworks: z.array(network),
      maxConnectionsPerClient: positiveInt,
      connectionRatePerClient: z.number().int().nonnegative(),
      tls: z
        .strictObject({
          key: z.string().min(1).nullable(),
          cert: z.string().min(1).nullable(),
          implicit: z.boolean(),
          required: z.boolean(),
          minVersion: z.enum(['TLSv1.2', 'TLSv1.3']),
        })
        .refine(tls => (tls.key === null) === (tls.cert === null), {
          message: 'key and cert go together: give both or neither',
          path: ['cert'],
        })
        .refine(tls => tls.key !== null || (!tls.implicit && !tls.required), {
          message: 'implicit and required TLS need a key and cert',
          path: ['key'],
        }),
      auth: z
        .strictObject({
          users: z.array(
            z.strictObject({
              username: z.string().min(1),
              password: z.string().min(8, 'must be at least 8 characters'),
            }),
          ),
          required: z.boolean(),
          allowInsecure: z.boolean(),
        })
        .refine(auth => !auth.required || auth.users.length > 0, {
          message: 'required needs at least one user in smtp.auth.users',
          path: ['required'],
        }),
      lmtp: z.boolean(),
      proxyProtocol: z.union([
        z.boolean(),
        z.array(
          z
            .string()
            .refine(value => isIP(value) !== 0, 'must be an IP address'),
        ),
      ]),
      // XCLIENT and XFORWARD: the relays (addresses or networks) that may use them
      xclient: z.array(network),
      xforward: z.array(network),
    })
    .refine(
      smtp =>
        smtp.auth.users.length === 0 ||
        smtp.tls.key !== null ||
        smtp.auth.allowInsecure,
      {
        message:
          'AUTH is offered over TLS only: set smtp.tls.key and cert (or smtp.auth.allowInsecure)',
        path: ['auth', 'users'],
      },
    )
    .refine(smtp => smtp.inFlowDelayMs < smtp.socketTimeoutMs, {
      message:
        'must be below smtp.socketTimeoutMs (a waiting client would time out)',
      path: ['inFlowDelayMs'],
    }),
  api: z.strictObject({
    url: z.url({ protocol: /^https?$/ }),
    token: z.string().min(1).nullable(),
    timeoutMs: positiveInt,
    concurrency: positiveInt,
    workerThread: z.boolean(),
    maxBodyBytes: z.number().int().min(1024),
  }),
  http: z.strictObject({
    enabled: z.boolean(),
    host: z.string().min(1),
    port,
  }),
  spool: z.strictObject({ dir: z.string().min(1) }),
  delivery: z.strictObject({
    mode: z.enum(['queue', 'sync', 'hybrid']),
    syncTimeoutMs: positiveInt,
    scanIntervalMs: positiveInt,
    shutdownTimeoutMs: z.number().int().nonnegative(),
    dedupeWindowMs: z.number().int().nonnegative(),
    dedupeMaxRecords: positiveInt,
    heldRetentionMs: positiveInt,
    retry: z.strictObject({
      initialDelayMs: positiveInt,
      multiplier: z.number().min(1),
      maxDelayMs: positiveInt,
      maxAgeMs: positiveInt,
    }),
  }),
  cluster: z.strictObject({
    workers: z.number().int().min(0).max(64),
  }),
  /** fleet-wide state shared by every instance that names the same Redis (docs/scaling.md) */
  state: z.strictObject({
    redis: z.strictObject({
      /** redis:// or rediss:// (TLS), user and password in the URL; null: local state only */
      url: z
        .url({
          protocol: /^rediss?$/,
          error: 'must be a redis:// or rediss:// URL',
        })
        .nullable(),
      /** put before every key, so that several fleets can share one Redis */
      prefix: z.string().min(1),
      /** the longest a lookup may wait for Redis before local state answers alone */
      timeoutMs: positiveInt,
    }),
  }),
  log: z.strictObject({
    level: z.enum(['error', 'warn', 'info', 'debug']),
    format: z.enum(['json', 'pretty']).default('json'),
  }),
  mapping: z.strictObject({
    content: z.enum(['auto', 'html', 'text']),
    addressFormat: z.enum(['address', 'full']),
    messageIdBrackets: z.boolean(),
    sanitizeHtml: z.boolean(),
    remoteImages: z.enum(['keep', 'block']),
    maxHtmlBytes: z.number().int().min(1024),
    priority: z.strictObject({
      high: priorityValue,
      normal: priorityValue,
      low: priorityValue,
    }),
  }),
  auth: z.strictObject({
    dns: z.strictObject({
      servers: z.array(dnsServer),
      timeoutMs: z.number().int().min(100),
    }),
  }),
  routes: routesSchema,
});

export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type MappingConfig = Config['mapping'];
export type ApiConfig = Config['api'];
export type SmtpConfig = Config['smtp'];
export type DeliveryConfig = Config['delivery'];
export type RetryConfig = DeliveryConfig['retry'];
export type AuthConfig = Config['auth'];
export type RedisConfig = Config['state']['redis'];
