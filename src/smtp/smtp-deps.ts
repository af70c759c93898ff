// What the SMTP server and its stage handlers are given: the delivery mode behind its Intake port.
import type { SenderAuthenticator } from '../auth/sender-auth.js';
import type { Config } from '../config/schema.js';
import type { Intake } from '../intake/intake.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ClientCounter } from './client-access.js';

export interface SmtpDeps {
  config: Pick<Config, 'smtp' | 'routes' | 'delivery'>;
  log: Logger;
  metrics: Metrics;
  /** the delivery mode: where a message goes once received, and flow control */
  intake: Intake;
  /** judges senders at the end of DATA for a route that enforces (absent: none is judged) */
  senderAuth?: SenderAuthenticator;
  /** the clock of the per-client limits */
  now: () => number;
  /**
   * Where sessions and failed logins are counted per client: by default in this process; in a
   * cluster worker, by the primary (a WorkerLimiter), so that the limits hold for the daemon
   */
  limiter?: ClientCounter;
}
