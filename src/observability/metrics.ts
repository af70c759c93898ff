// Prometheus metrics: one registry per daemon so tests can run several side by side.
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';
import { packageVersion } from '../config/package-version.js';

export interface Metrics {
  registry: Registry;
  /**
   * SMTP transactions by outcome: accepted, rejected, deferred, aborted (client gone), partial
   * (LMTP in sync mode: recipients answered differently).
   */
  messages: Counter<'outcome'>;
  /** POSTs to the API by result: delivered, dry_run, temporary, permanent. */
  posts: Counter<'result'>;
  /** Queue-mode attempts by what they came to: delivered, retry, dead, held. */
  deliveries: Counter<'outcome'>;
  /** Held messages deleted by the daemon after `delivery.heldRetentionMs`. */
  heldExpired: Counter;
  /**
   * Routes whose policy dropped the message (autoReplies or bulk: drop), in every delivery mode:
   * nothing posted for them, never silent.
   */
  dropped: Counter;
  /**
   * Recipients refused on their own after DATA (LMTP's reply per recipient, in sync and hybrid
   * modes), by result: permanent (5xx), temporary (4xx).
   */
  refusedRecipients: Counter<'result'>;
  /** 1 while delivery is paused by a 401/403/404 from the API. */
  paused: Gauge;
  /** Messages in the spool by state: queue, active, dead, held (set by the queue runner's scans). */
  spool: Gauge<'state'>;
  /** Seconds from end of DATA to the reply. */
  acceptSeconds: Histogram;
  /** Bytes of accepted messages. */
  messageBytes: Histogram;
  /** Seconds a transaction waited for delivery to catch up (flow control), when it waited. */
  flowDelaySeconds: Histogram;
  /** Sessions refused when they started, by reason: network, connections, rate, logins, limiter. */
  refusedSessions: Counter<'reason'>;
  /** SMTP AUTH attempts by result: success, failure. */
  authentications: Counter<'result'>;
  /** Sessions ended by the client's fault: gone mid-session, a TLS handshake failed or missing. */
  clientErrors: Counter;
  /** Sessions closed with `421 4.4.2` by a deadline: command, data, session. */
  sessionTimeouts: Counter<'deadline'>;
  /** Senders judged (SPF, DKIM, DMARC, ARC), by verdict: pass, fail, none, temperror. */
  senderAuth: Counter<'verdict'>;
  /** 1, labelled with the package's version and Node's. */
  buildInfo: Gauge<'version' | 'node'>;
  /** Recipients refused at RCPT, by reason: no_route (550 5.1.1), too_many (452). */
  rcptRefused: Counter<'reason'>;
  /** Transactions refused at MAIL FROM, by reason: size (552, SIZE over the limit), tls, auth (530). */
  mailRefused: Counter<'reason'>;
  /** Seconds since the oldest message waiting in queue/ was accepted (0: none waits). */
  oldestWaitingSeconds: Gauge;
  /** Seconds each POST to the API took, from its concurrency slot until its answer was in. */
  apiPostSeconds: Histogram;
  /** Seconds from acceptance to delivery of each delivered message (queue mode). */
  deliverySeconds: Histogram;
  /** 1 while the fleet's Redis (state.redis.url) answers; 0 while local state answers alone. */
  redisUp: Gauge;
  /** Operations answered by local state alone because Redis was away or late, by op. */
  redisFallbacks: Counter<'op'>;
}

/**
 * Every value each labelled counter (and the spool gauge) is given, set to 0 at start: a series
 * that appears only once its first event happened makes `increase()` miss that event, and alerts
 * on it stay silent after every restart.
 */
export const KNOWN_LABELS = {
  mailbridge_messages_total: {
    outcome: ['accepted', 'rejected', 'deferred', 'aborted', 'partial'],
  },
  mailbridge_api_posts_total: {
    result: ['delivered', 'dry_run', 'temporary', 'permanent'],
  },
  mailbridge_deliveries_total: {
    outcome: ['delivered', 'dropped', 'retry', 'dead', 'held'],
  },
  mailbridge_recipients_refused_total: { result: ['permanent', 'temporary'] },
  mailbridge_spool_messages: { state: ['queue', 'active', 'dead', 'held'] },
  mailbridge_sessions_refused_total: {
    reason: ['network', 'connections', 'rate', 'logins', 'limiter'],
  },
  mailbridge_smtp_auth_total: { result: ['success', 'failure'] },
  mailbridge_smtp_session_timeouts_total: {
    deadline: ['command', 'data', 'session'],
  },
  mailbridge_sender_auth_total: {
    verdict: ['pass', 'fail', 'none', 'temperror'],
  },
  mailbridge_smtp_rcpt_refused_total: { reason: ['no_route', 'too_many'] },
  mailbridge_smtp_mail_refused_total: { reason: ['size', 'tls', 'auth'] },
  mailbridge_redis_fallbacks_total: { op: ['dedupe', 'limits', 'status'] },
} as const satisfies Record<string, Record<string, readonly string[]>>;

/**
 * prom-client's gauges that promtool refuses (a `_total` suffix is for counters): their
 * per-type gauges without the suffix stay, and sum to them.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * Creates the metric set on a fresh registry, with Node's process metrics under their standard
 * names (`process_*`, `nodejs_*`), every known label value at 0.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  const metrics = defineMetrics(registry);
  metrics.buildInfo.set(
    { version: packageVersion(), node: process.versions.node },
    1,
  );
  for (const [name, labels] of Object.entries(KNOWN_LABELS)) {
    const metric = registry.getSingleMetric(name) as Counter | Gauge;
    for (const [label, values] of Object.entries(labels)) {
      for (const value of values) metric.inc({ [label]: value }, 0);
    }
  }
  return metrics;
}

function defineMetrics(registry: Registry): Metrics {
  return {
    registry,
    messages: new Counter({
      name: 'mailbridge_messages_total',
      help: 'SMTP transactions by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    posts: new Counter({
      name: 'mailbridge_api_posts_total',
      help: 'POSTs to the API by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'mailbridge_deliveries_total',
      help: 'Queue delivery attempts by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'mailbridge_dropped_total',
      help: 'Routes of messages dropped by their policy (autoReplies, bulk: drop), nothing posted',
      registers: [registry],
    }),
    heldExpired: new Counter({
      name: 'mailbridge_held_expired_total',
      help: 'Held messages deleted after delivery.heldRetentionMs',
      registers: [registry],
    }),
    refusedRecipients: new Counter({
      name: 'mailbridge_recipients_refused_total',
      help: 'Recipients refused on their own after DATA (LMTP replies per recipient) by result: permanent (5xx), temporary (4xx)',
      labelNames: ['result'],
      registers: [registry],
    }),
    paused: new Gauge({
      name: 'mailbridge_delivery_paused',
      help: '1 while delivery is paused because the API refused our credentials or URL',
      // in a cluster every worker reports: paused if any is
      aggregator: 'max',
      registers: [registry],
    }),
    spool: new Gauge({
      name: 'mailbridge_spool_messages',
      help: 'Messages in the spool by state',
      // in a cluster every worker reads the same shared spool
      aggregator: 'max',
      labelNames: ['state'],
      registers: [registry],
    }),
    acceptSeconds: new Histogram({
      name: 'mailbridge_accept_seconds',
      help: 'Time from the end of DATA to the SMTP reply',
      buckets: [
        0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1,
        0.25, 0.5, 1, 2.5, 5, 10, 30,
      ],
      registers: [registry],
    }),
    messageBytes: new Histogram({
      name: 'mailbridge_message_bytes',
      help: 'Size of received messages',
      buckets: [1024, 10240, 102400, 1048576, 10485760, 52428800],
      registers: [registry],
    }),
    flowDelaySeconds: new Histogram({
      name: 'mailbridge_flow_delay_seconds',
      help: 'Time a transaction waited before MAIL FROM for delivery to catch up (flow control)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    refusedSessions: new Counter({
      name: 'mailbridge_sessions_refused_total',
      help: 'SMTP sessions refused when they started (network not allowed, too many connections from the client, connection rate, failed logins; limiter: in a cluster, the primary did not answer in time)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    authentications: new Counter({
      name: 'mailbridge_smtp_auth_total',
      help: 'SMTP AUTH attempts by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    clientErrors: new Counter({
      name: 'mailbridge_smtp_client_errors_total',
      help: 'SMTP sessions ended by a client error (gone, or a TLS handshake that failed or never came)',
      registers: [registry],
    }),
    sessionTimeouts: new Counter({
      name: 'mailbridge_smtp_session_timeouts_total',
      help: 'SMTP sessions closed with 421 4.4.2 by a deadline: command (a command line not finished in time), data (DATA slower than its deadline), session (the whole session too long)',
      labelNames: ['deadline'],
      registers: [registry],
    }),
    senderAuth: new Counter({
      name: 'mailbridge_sender_auth_total',
      help: 'Messages whose sender was judged (SPF, DKIM, DMARC, ARC), by verdict: pass, fail (DMARC failed, or no single From domain), none (nothing to check), temperror (DNS failed or too slow)',
      labelNames: ['verdict'],
      registers: [registry],
    }),
    buildInfo: new Gauge({
      name: 'mailbridge_build_info',
      help: 'Always 1: the version of mailbridge and of Node that run',
      labelNames: ['version', 'node'],
      // in a cluster every worker runs the same build
      aggregator: 'max',
      registers: [registry],
    }),
    rcptRefused: new Counter({
      name: 'mailbridge_smtp_rcpt_refused_total',
      help: 'Recipients refused at RCPT, by reason: no_route (550 5.1.1), too_many (452 4.5.3, smtp.maxRecipients)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mailRefused: new Counter({
      name: 'mailbridge_smtp_mail_refused_total',
      help: 'Transactions refused at MAIL FROM, by reason: size (552, a SIZE over smtp.maxMessageSize), tls (530, STARTTLS required), auth (530, AUTH required)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    oldestWaitingSeconds: new Gauge({
      name: 'mailbridge_queue_oldest_age_seconds',
      help: 'Seconds since the oldest message waiting in the queue was accepted (0 when none waits), as of the last scan',
      // in a cluster every worker reads the same shared spool
      aggregator: 'max',
      registers: [registry],
    }),
    apiPostSeconds: new Histogram({
      name: 'mailbridge_api_post_seconds',
      help: 'Time each POST to the API took, from its concurrency slot until its answer was in (on the post thread, mapping the message included)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    deliverySeconds: new Histogram({
      name: 'mailbridge_delivery_seconds',
      help: 'Time from acceptance (250) to delivery of each delivered message, retries included',
      buckets: [
        0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400,
        86400,
      ],
      registers: [registry],
    }),
    redisUp: new Gauge({
      name: 'mailbridge_redis_up',
      help: "1 while the fleet's Redis answers (0: local state only, or no Redis configured)",
      registers: [registry],
    }),
    redisFallbacks: new Counter({
      name: 'mailbridge_redis_fallbacks_total',
      help: 'Operations answered by local state alone because Redis was away or late',
      labelNames: ['op'],
      registers: [registry],
    }),
  };
}
