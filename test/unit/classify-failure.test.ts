// Unit tables for classifyFailure and parseRetryAfter: what a failed POST means for delivery.
import { expect } from 'chai';
import {
  classifyFailure,
  isSuccess,
  parseRetryAfter,
  type FailureInput,
} from '../../src/api/classify-failure.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

type Kind = 'temporary' | 'permanent' | 'config';

/** [what failed, expected kind, expected reason] */
type Row = [input: Omit<FailureInput, 'now'>, kind: Kind, reason: string];

const CONFIG_REASON = 'check api.url and api.token';

const ROWS: Row[] = [
  // the API did not answer
  [{ code: 'ECONNREFUSED' }, 'temporary', 'network error ECONNREFUSED'],
  [{ code: 'ECONNRESET' }, 'temporary', 'network error ECONNRESET'],
  [{ code: 'ENOTFOUND' }, 'temporary', 'network error ENOTFOUND'],
  [{ code: 'EAI_AGAIN' }, 'temporary', 'network error EAI_AGAIN'],
  [{ code: 'EPIPE' }, 'temporary', 'network error EPIPE'],
  [{ code: 'ETIMEDOUT' }, 'temporary', 'timeout'],
  [{ code: 'ECONNABORTED' }, 'temporary', 'timeout'],
  [{ code: 'ERR_CANCELED' }, 'temporary', 'timeout'],
  [{}, 'temporary', 'network error unknown'],
  // temporary statuses
  [{ status: 408 }, 'temporary', 'HTTP 408'],
  [{ status: 425 }, 'temporary', 'HTTP 425'],
  [{ status: 429 }, 'temporary', 'HTTP 429'],
  [{ status: 500 }, 'temporary', 'HTTP 500'],
  [{ status: 501 }, 'temporary', 'HTTP 501'],
  [{ status: 502 }, 'temporary', 'HTTP 502'],
  [{ status: 503 }, 'temporary', 'HTTP 503'],
  [{ status: 504 }, 'temporary', 'HTTP 504'],
  [{ status: 505 }, 'temporary', 'HTTP 505'],
  [{ status: 507 }, 'temporary', 'HTTP 507'],
  [{ status: 508 }, 'temporary', 'HTTP 508'],
  [{ status: 511 }, 'temporary', 'HTTP 511'],
  [{ status: 599 }, 'temporary', 'HTTP 599'],
  // our token or URL is wrong: pause and alert
  [{ status: 401 }, 'config', `HTTP 401: ${CONFIG_REASON}`],
  [{ status: 403 }, 'config', `HTTP 403: ${CONFIG_REASON}`],
  [{ status: 404 }, 'config', `HTTP 404: ${CONFIG_REASON}`],
  [{ status: 300 }, 'config', 'HTTP 300 redirect: check api.url'],
  [{ status: 301 }, 'config', 'HTTP 301 redirect: check api.url'],
  [{ status: 302 }, 'config', 'HTTP 302 redirect: check api.url'],
  [{ status: 303 }, 'config', 'HTTP 303 redirect: check api.url'],
  [{ status: 304 }, 'config', 'HTTP 304 redirect: check api.url'],
  [{ status: 307 }, 'config', 'HTTP 307 redirect: check api.url'],
  [{ status: 308 }, 'config', 'HTTP 308 redirect: check api.url'],
  // the message itself is refused
  [{ status: 400 }, 'permanent', 'HTTP 400'],
  [{ status: 405 }, 'permanent', 'HTTP 405'],
  [{ status: 409 }, 'permanent', 'HTTP 409'],
  [{ status: 410 }, 'permanent', 'HTTP 410'],
  [{ status: 413 }, 'permanent', 'HTTP 413'],
  [{ status: 415 }, 'permanent', 'HTTP 415'],
  [{ status: 422 }, 'permanent', 'HTTP 422'],
  [{ status: 499 }, 'permanent', 'HTTP 499'],
  // a status decides over an error code that came with it
  [{ status: 503, code: 'ERR_BAD_RESPONSE' }, 'temporary', 'HTTP 503'],
  [{ status: 400, code: 'ERR_BAD_REQUEST' }, 'permanent', 'HTTP 400'],
  [
    { status: 401, code: 'ERR_BAD_REQUEST' },
    'config',
    `HTTP 401: ${CONFIG_REASON}`,
  ],
  // statuses no rule names: retrying loses nothing
  [{ status: 200 }, 'temporary', 'HTTP 200'],
  [{ status: 600 }, 'temporary', 'HTTP 600'],
];

describe('classifyFailure', () => {
  for (const [input, kind, reason] of ROWS) {
    const label = input.status ?? input.code ?? 'nothing';
    it(`${label}${input.status && input.code ? ` + ${input.code}` : ''} -> ${kind}`, () => {
      const result = classifyFailure({ ...input, now: NOW });
      expect(result).to.deep.equal({
        temporary: kind !== 'permanent',
        configError: kind === 'config',
        reason,
        retryAt: undefined,
      });
    });
  }

  describe('Retry-After', () => {
    const rows: Array<
      [input: Omit<FailureInput, 'now'>, retryAt: number | undefined]
    > = [
      [{ status: 503, retryAfter: '120' }, NOW + 120_000],
      [
        { status: 429, retryAfter: 'Wed, 01 Jan 2025 12:05:00 GMT' },
        NOW + 300_000,
      ],
      [{ status: 429, retryAfter: 'Tue, 31 Dec 2024 00:00:00 GMT' }, NOW],
      [{ status: 503, retryAfter: 'soon' }, undefined],
      [{ code: 'ECONNRESET', retryAfter: '5' }, NOW + 5_000],
      [{ status: 401, retryAfter: '60' }, NOW + 60_000],
      // only a temporary failure carries retryAt
      [{ status: 400, retryAfter: '120' }, undefined],
      [{ status: 422, retryAfter: 'Wed, 01 Jan 2025 12:05:00 GMT' }, undefined],
      [{ status: 413, retryAfter: '1' }, undefined],
    ];
    for (const [input, retryAt] of rows) {
      it(`${input.status ?? input.code} with Retry-After ${JSON.stringify(input.retryAfter)}`, () => {
        const result = classifyFailure({ ...input, now: NOW });
        expect(result.retryAt).to.equal(retryAt);
      });
    }
  });
});

describe('parseRetryAfter', () => {
  const rows: Array<[value: string | undefined, delayMs: number | undefined]> =
    [
      [undefined, undefined],
      ['', undefined],
      ['   ', undefined],
      // delay-seconds
      ['0', 0],
      ['1', 1_000],
      ['120', 120_000],
      [' 120 ', 120_000],
      ['86400', 86_400_000],
      // HTTP-date: IMF-fixdate, RFC 850, asctime
      ['Wed, 01 Jan 2025 12:02:00 GMT', 120_000],
      ['Wednesday, 01-Jan-25 12:02:00 GMT', 120_000],
      ['Wed Jan  1 12:02:00 2025', 120_000],
      // a date in the past or right now: retry at once, never earlier than now
      ['Wed, 01 Jan 2025 12:00:00 GMT', 0],
      ['Tue, 31 Dec 2024 00:00:00 GMT', 0],
      ['Thu, 01 Jan 1970 00:00:00 GMT', 0],
      // garbage
      ['soon', undefined],
      ['-5', undefined],
      ['1.5', undefined],
      ['3e2', undefined],
      ['12 abc', undefined],
      ['in 5', undefined],
      ['x 1', undefined],
      ['May 5', undefined],
      ['2025-01-02T00:00:00Z', undefined],
      ['Mon, 32 Jan 2025 00:00:00 GMT', undefined],
    ];
  for (const [value, delayMs] of rows) {
    it(`${JSON.stringify(value)} -> ${delayMs === undefined ? 'none' : `now + ${delayMs} ms`}`, () => {
      const at = parseRetryAfter(value, NOW);
      expect(at).to.equal(delayMs === undefined ? undefined : NOW + delayMs);
    });
  }
});

describe('isSuccess', () => {
  const cases: Array<[number | undefined, boolean]> = [
    [200, true],
    [201, true],
    [204, true],
    [299, true],
    [199, false],
    [300, false],
    [302, false],
    [429, false],
    [500, false],
    [undefined, false],
  ];
  for (const [status, expected] of cases) {
    it(`${status ?? 'no answer'} -> ${expected}`, () => {
      expect(isSuccess(status)).to.equal(expected);
    });
  }
});
