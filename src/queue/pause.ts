// The config-error pause: no delivery while the API refuses our credentials or URL (401/403/404).
import type { RetryConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AttemptResult } from './attempt-delivery.js';

/** A pause in force: the next probe, the delay it grew to, and why. */
interface PauseState {
  until: number;
  delay: number;
  reason: string;
}

export interface PauseDeps {
  retry: RetryConfig;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** told when delivery pauses (with the reason) or resumes (null) */
  onPauseChange?: (reason: string | null) => void;
}

/**
 * Paused, the runner makes one probe at a time, once `until` has passed, with whichever message
 * is next; the delay between probes grows as the retry schedule does.
 */
export class DeliveryPause {
  private state: PauseState | null = null;

  constructor(private readonly deps: PauseDeps) {}

  /** Why delivery is not running, for /readyz; null when it is. */
  get reason(): string | null {
    return this.state?.reason ?? null;
  }

  get active(): boolean {
    return this.state !== null;
  }

  /** When the next probe may start (while paused). */
  get until(): number {
    return this.state?.until ?? -Infinity;
  }

  /**
   * Starts, extends or ends a pause after an attempt's result. True when a pause starts now:
   * `onStart` has then run (the caller takes the fresh messages waiting off the ready list)
   * before the listener heard of it; the caller parks them.
   */
  note(result: AttemptResult, onStart: () => void): boolean {
    const retry = this.deps.retry;
    if (result.configError) {
      const delay = this.state
        ? Math.min(this.state.delay * retry.multiplier, retry.maxDelayMs)
        : Math.min(retry.initialDelayMs, retry.maxDelayMs);
      const starting = !this.state;
      if (starting) {
        this.deps.log.error(
          'delivery paused: the API refused our credentials or URL; check api.url and api.token',
          { error: result.entry.lastError, probeInMs: delay },
        );
      }
      this.state = {
        until: this.deps.now() + delay,
        delay,
        reason: `delivery paused: ${result.entry.lastError ?? 'API configuration error'}`,
      };
      this.deps.metrics.paused.set(1);
      if (starting) {
        onStart();
        this.deps.onPauseChange?.(this.state.reason);
      }
      return starting;
    }
    // a message held on every route reached no API: it says nothing of our credentials
    if (this.state && result.outcome !== 'held') {
      this.state = null;
      this.deps.metrics.paused.set(0);
      this.deps.log.info('delivery resumed');
      this.deps.onPauseChange?.(null);
    }
    return false;
  }
}
