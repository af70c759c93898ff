// The one place that decides what a failed POST means: retry, give up, or fix our configuration.

/** Whether the API took the body: any 2xx. */
export function isSuccess(status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status < 300;
}

export interface FailureInput {
  /** HTTP status, when the API answered */
  status?: number;
  /** Node or axios error code, when it did not (ECONNREFUSED, ECONNABORTED, ...) */
  code?: string;
  /** the Retry-After header, seconds or an HTTP date */
  retryAfter?: string;
  /** now, in ms since the epoch, to resolve Retry-After */
  now: number;
}

export interface FailureClass {
  temporary: boolean;
  /** 401/403/404 and redirects: the token or URL is wrong, not the message */
  configError: boolean;
  /** a short reason for logs and the dead-letter record */
  reason: string;
  /** earliest retry time from Retry-After, ms since the epoch */
  retryAt?: number;
}

interface Rule {
  test: (input: FailureInput) => boolean;
  temporary: boolean;
  configError: boolean;
  reason: (input: FailureInput) => string;
}

const statusIs =
  (...codes: number[]) =>
  (i: FailureInput) =>
    i.status !== undefined && codes.includes(i.status);
const statusIn = (from: number, to: number) => (i: FailureInput) =>
  i.status !== undefined && i.status >= from && i.status <= to;
const http = (i: FailureInput) => `HTTP ${i.status}`;

/** Checked in order; the first rule that matches decides. */
const RULES: Rule[] = [
  {
    test: statusIs(401, 403, 404),
    temporary: true,
    configError: true,
    reason: i => `HTTP ${i.status}: check api.url and api.token`,
  },
  {
    test: statusIn(300, 399),
    temporary: true,
    configError: true,
    reason: i => `HTTP ${i.status} redirect: check api.url`,
  },
  {
    test: statusIs(408, 425, 429),
    temporary: true,
    configError: false,
    reason: http,
  },
  {
    test: statusIn(500, 599),
    temporary: true,
    configError: false,
    reason: http,
  },
  {
    test: statusIn(400, 499),
    temporary: false,
    configError: false,
    reason: http,
  },
  {
    test: i =>
      i.code === 'ECONNABORTED' ||
      i.code === 'ETIMEDOUT' ||
      i.code === 'ERR_CANCELED',
    temporary: true,
    configError: false,
    reason: () => 'timeout',
  },
  {
    test: i => i.status === undefined,
    temporary: true,
    configError: false,
    reason: i => `network error ${i.code ?? 'unknown'}`,
  },
];

/** Classifies a failed POST; anything unknown is temporary, since retrying loses nothing. */
export function classifyFailure(input: FailureInput): FailureClass {
  const rule = RULES.find(r => r.test(input));
  const retryAt = parseRetryAfter(input.retryAfter, input.now);
  if (!rule) {
    return {
      temporary: true,
      configError: false,
      reason: http(input),
      retryAt,
    };
  }
  return {
    temporary: rule.temporary,
    configError: rule.configError,
    reason: rule.reason(input),
    retryAt: rule.temporary ? retryAt : undefined,
  };
}

/**
 * The shape of an HTTP-date (IMF-fixdate, RFC 850 or asctime): a day name, then a time. Checked
 * before Date.parse, which reads almost anything with a digit ("in 5", "1.5") as some date.
 */
const HTTP_DATE =
  /^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,? .*\b\d\d:\d\d:\d\d\b/i;

/** Retry-After as seconds or an HTTP date, to ms since the epoch; undefined when absent or bad. */
export function parseRetryAfter(
  value: string | undefined,
  now: number,
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return now + Number(trimmed) * 1000;
  if (!HTTP_DATE.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(now, date);
}
