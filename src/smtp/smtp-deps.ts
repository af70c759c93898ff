// What the SMTP server and its stage handlers are given: the delivery mode's parts, and more.
import type { Metrics } from '../observability/metrics.js';
import type { AcceptDeps } from './accept-message.js';
import type { ClientCounter } from './client-access.js';

export interface SmtpDeps extends AcceptDeps {
  metrics: Metrics;
  /** the clock of queue entries (received, first due) */
  now: () => number;
  /**
   * Where sessions and failed logins are counted per client: by default in this process; in a
   * cluster worker, by the primary (a WorkerLimiter), so that the limits hold for the daemon
   */
  limiter?: ClientCounter;
}
