// Retry schedule: exponential backoff with full jitter, bounded; Retry-After wins when later.

export interface BackoffOptions {
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
}

/**
 * The delay before attempt `attempt + 1`, after `attempt` failed attempts (1 or more): a random
 * point in [0, min(max, initial * multiplier^(attempt-1))] ("full jitter", which spreads a herd
 * of retries after an outage). `random` returns [0, 1).
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attempt - 1);
  const ceiling = Math.min(
    options.maxDelayMs,
    options.initialDelayMs * options.multiplier ** exponent,
  );
  return Math.floor(random() * ceiling);
}

/** When to try next: after the jittered delay, and never before the API's Retry-After. */
export function nextAttemptAt(
  now: number,
  attempt: number,
  options: BackoffOptions,
  retryAt?: number,
  random: () => number = Math.random,
): number {
  const scheduled = now + backoffDelay(attempt, options, random);
  return retryAt !== undefined ? Math.max(scheduled, retryAt) : scheduled;
}
