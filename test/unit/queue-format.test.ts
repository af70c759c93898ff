// Tables for the queue tools' pure parts: table layout, sizes, times, ages and buckets, the
// shape, the filters, header decoding, usage checks and every command's help.
import { expect } from 'chai';
import type { RouteConfig } from '../../src/config/schema.js';
import {
  decodeWords,
  headerSummary,
} from '../../src/commands/queue-headers.js';
import { formatListing } from '../../src/commands/queue-list.js';
import { withApiErrors } from '../../src/commands/queue-show.js';
import {
  keysOf,
  matchesFilter,
  ownedByOthers,
} from '../../src/commands/queue-select.js';
import {
  ageBucket,
  BUCKETS,
  formatShape,
  shapeOf,
} from '../../src/commands/queue-shape.js';
import {
  formatDue,
  formatDuration,
  formatRecipients,
  formatSize,
  formatTable,
  formatTime,
  printable,
} from '../../src/commands/queue-table.js';
import { checkUsage, type QueueCommand } from '../../src/commands/queue.js';
import { COMMANDS, helpText, usageLine } from '../../src/commands/usage.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import {
  newQueueEntry,
  type QueueEntry,
  type RouteStatus,
} from '../../src/spool/queue-entry.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const NOW = Date.parse('2026-12-07T10:00:00Z');

const ROUTES = [
  { match: 'support@example.com', mailbox_id: 'mb-support' },
  { match: '*@example.org', mailbox_id: 'mb-sales' },
  { match: '*' },
].map(r => ({
  ...r,
  thread_from_subaddress: false,
  fields: {},
})) as RouteConfig[];

/** An entry to `rcptTo`, `ageMs` old, its routes' statuses as given (default pending). */
function entry(
  id: string,
  rcptTo: string[],
  ageMs = 0,
  statuses: RouteStatus[] = [],
): QueueEntry {
  const made = newQueueEntry({
    envelope: {
      id,
      mailFrom: 'jane@example.net',
      rcptTo,
      receivedAt: new Date(NOW - ageMs).toISOString(),
    },
    groups: groupByRoute(rcptTo, ROUTES),
    messageId: `<${id}@example.net>`,
    size: 2048,
    now: NOW - ageMs,
  });
  made.routes = made.routes.map((r, i) => ({
    ...r,
    status: statuses[i] ?? r.status,
  }));
  return made;
}

describe('queue tools: formatting', () => {
  it('formatTable: a header row, cells padded, numbers to the right, the last column unpadded', () => {
    expect(
      formatTable(
        [{ label: 'ID' }, { label: 'SIZE', align: 'right' }, { label: 'ERR' }],
        [
          ['A1', '5 B', ''],
          ['LONGER', '1.2 KiB', 'HTTP 503'],
        ],
      ),
    ).to.deep.equal([
      'ID         SIZE  ERR',
      'A1          5 B',
      'LONGER  1.2 KiB  HTTP 503',
    ]);
  });

  const sizes: Array<[number, string]> = [
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [20 * 1024 * 1024, '20.0 MiB'],
    [3 * 1024 ** 3, '3.0 GiB'],
  ];
  for (const [bytes, text] of sizes) {
    it(`formatSize(${bytes}) is ${text}`, () => {
      expect(formatSize(bytes)).to.equal(text);
    });
  }

  const durations: Array<[number, string]> = [
    [0, '0s'],
    [-5000, '0s'],
    [59_999, '59s'],
    [MIN, '1m'],
    [59 * MIN, '59m'],
    [HOUR + 5 * MIN, '1h05m'],
    [23 * HOUR + 59 * MIN, '23h59m'],
    [24 * HOUR, '1d00h'],
    [3 * 24 * HOUR + 4 * HOUR, '3d04h'],
  ];
  for (const [ms, text] of durations) {
    it(`formatDuration(${ms}) is ${text}`, () => {
      expect(formatDuration(ms)).to.equal(text);
    });
  }

  it('formatDue: now once due, else in how long', () => {
    expect(formatDue(NOW - 1, NOW)).to.equal('now');
    expect(formatDue(NOW, NOW)).to.equal('now');
    expect(formatDue(NOW + 12 * MIN, NOW)).to.equal('in 12m');
  });

  it('formatTime: UTC to the second; - for none or garbage', () => {
    expect(formatTime(NOW)).to.equal('2026-12-07 10:00:00');
    expect(formatTime('2026-12-07T08:13:54.123Z')).to.equal(
      '2026-12-07 08:13:54',
    );
    expect(formatTime(null)).to.equal('-');
    expect(formatTime('not a time')).to.equal('-');
  });

  it('formatRecipients: two shown, then how many more', () => {
    expect(formatRecipients(['a@x'])).to.equal('a@x');
    expect(formatRecipients(['a@x', 'b@x'])).to.equal('a@x, b@x');
    expect(formatRecipients(['a@x', 'b@x', 'c@x', 'd@x'])).to.equal(
      'a@x, b@x (+2)',
    );
  });

  it('printable: control characters (a terminal escape) shown as \\xNN', () => {
    expect(printable('ok <a@b>')).to.equal('ok <a@b>');
    expect(printable('x\u001b[2Jy\r\n')).to.equal('x\\x1b[2Jy\\x0d\\x0a');
    expect(printable('\u009b31m')).to.equal('\\x9b31m');
    expect(printable(null)).to.equal('');
  });

  it('formatListing: "queue is empty" and its kin when there is nothing', () => {
    expect(formatListing('list', [], NOW)).to.deep.equal(['queue is empty']);
    expect(formatListing('dead', [], NOW)).to.deep.equal(['no dead messages']);
    expect(formatListing('held', [], NOW)).to.deep.equal(['no held messages']);
  });

  it('formatListing: labelled columns, a line per message, the totals line', () => {
    const waiting = {
      ...entry('A1', ['support@example.com'], 10 * MIN),
      nextAttemptAt: NOW + 5 * MIN,
      attempts: 2,
      lastError: 'API HTTP 503',
    };
    const claimed = entry('B2', ['a@example.org', 'b@example.org', 'c@x.io']);
    expect(
      formatListing(
        'list',
        [
          { state: 'queue', entry: waiting },
          { state: 'active', entry: claimed },
        ],
        NOW,
      ),
    ).to.deep.equal([
      'ID  ARRIVAL (UTC)        NEXT ATTEMPT     SIZE  TRIES  FROM              RECIPIENTS                         LAST ERROR',
      'A1  2026-12-07 09:50:00  in 5m         2.0 KiB      2  jane@example.net  support@example.com                API HTTP 503',
      'B2  2026-12-07 10:00:00  delivering    2.0 KiB      0  jane@example.net  a@example.org, b@example.org (+1)',
      '-- 2 messages, 4 recipients, 4.0 KiB (1 being delivered)',
    ]);
  });
});

describe('queue tools: age buckets and shape', () => {
  const buckets: Array<[number, string]> = [
    [-MIN, '0-5m'],
    [0, '0-5m'],
    [5 * MIN - 1, '0-5m'],
    [5 * MIN, '5-10m'],
    [10 * MIN, '10-20m'],
    [20 * MIN, '20-40m'],
    [40 * MIN, '40m-1h'],
    [HOUR - 1, '40m-1h'],
    [HOUR, '1-2h'],
    [2 * HOUR, '2-4h'],
    [4 * HOUR, '4-8h'],
    [8 * HOUR, '8h-1d'],
    [24 * HOUR - 1, '8h-1d'],
    [24 * HOUR, '>1d'],
    [400 * 24 * HOUR, '>1d'],
  ];
  for (const [age, label] of buckets) {
    it(`an age of ${age} ms is in ${label}`, () => {
      expect(BUCKETS[ageBucket(age)]?.label).to.equal(label);
    });
  }

  it('shapeOf: a message counts once in TOTAL and once per mailbox still owed; delivered routes do not count', () => {
    const shape = shapeOf(
      [
        entry('A', ['support@example.com'], 2 * HOUR),
        entry('B', ['support@example.com', 'a@example.org'], MIN),
        // its mb-support route is delivered: only mb-sales is owed
        entry('C', ['support@example.com', 'b@example.org'], 30 * HOUR, [
          'delivered',
        ]),
        entry('D', ['x@elsewhere.example'], 7 * MIN),
      ],
      'mailbox',
      NOW,
    );
    expect(shape.total).to.deep.equal({
      name: 'TOTAL',
      total: 4,
      counts: [1, 1, 0, 0, 0, 0, 1, 0, 0, 1],
    });
    expect(shape.rows.map(r => [r.name, r.total, r.counts])).to.deep.equal([
      ['mb-sales', 2, [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
      ['mb-support', 2, [1, 0, 0, 0, 0, 0, 1, 0, 0, 0]],
      ['*', 1, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]],
    ]);
    expect(formatShape(shape)[0]).to.equal(
      'MAILBOX     TOTAL  0-5m  5-10m  10-20m  20-40m  40m-1h  1-2h  2-4h  4-8h  8h-1d  >1d',
    );
    expect(formatShape(shape)[1]).to.equal(
      'TOTAL           4     1      1       0       0       0     0     1     0      0    1',
    );
  });

  it('shapeOf by domain: each recipient domain still owed, lower case', () => {
    const shape = shapeOf(
      [entry('A', ['support@example.com', 'a@EXAMPLE.org', 'b@example.org'])],
      'domain',
      NOW,
    );
    expect(shape.rows.map(r => [r.name, r.total])).to.deep.equal([
      ['example.com', 1],
      ['example.org', 1],
    ]);
  });
});

describe('queue tools: filters', () => {
  const both = entry('A', ['support@example.com', 'a@example.org']);
  const salesOnly = entry('B', ['support@example.com', 'a@example.org'], 0, [
    'delivered',
  ]);
  const rows: Array<
    [
      string,
      QueueEntry,
      { mailbox?: string; domain?: string },
      boolean,
      boolean,
    ]
  > = [
    // name, entry, filter, matches, owned by others
    ['no filter', both, {}, true, false],
    ['mailbox of a pending route', both, { mailbox: 'mb-support' }, true, true],
    [
      'mailbox already delivered',
      salesOnly,
      { mailbox: 'mb-support' },
      false,
      true,
    ],
    ['the only mailbox owed', salesOnly, { mailbox: 'mb-sales' }, true, false],
    ['domain, any case', both, { domain: 'Example.ORG' }, true, true],
    ['domain only owed', salesOnly, { domain: 'example.org' }, true, false],
    ['unknown mailbox', both, { mailbox: 'mb-none' }, false, true],
  ];
  for (const [name, e, filter, matches, others] of rows) {
    it(`${name}: matches ${matches}, owed elsewhere ${others}`, () => {
      expect(matchesFilter(e, filter)).to.equal(matches);
      expect(ownedByOthers(e, filter)).to.equal(others);
    });
  }

  it('keysOf names a route without mailbox_id by its match', () => {
    expect(keysOf(entry('C', ['x@y.example']), 'mailbox')).to.deep.equal(['*']);
  });
});

describe('queue tools: header summary', () => {
  const words: Array<[string, string]> = [
    ['plain', 'plain'],
    ['=?utf-8?q?Caf=C3=A9_=E2=98=95?=', 'Café ☕'],
    ['=?UTF-8?B?w6l0w6k=?=', 'été'],
    ['=?iso-8859-1?q?na=EFve?= =?iso-8859-1?q?_caf=E9?=', 'naïve café'],
    ['Re: =?utf-8?q?=C3=BC?= x', 'Re: ü x'],
    ['=?x-unknown?q?abc?=', '=?x-unknown?q?abc?='],
  ];
  for (const [raw, text] of words) {
    it(`decodeWords(${JSON.stringify(raw)}) is ${JSON.stringify(text)}`, () => {
      expect(decodeWords(raw)).to.equal(text);
    });
  }

  it('headerSummary: folded lines joined, first of each kept, in a fixed order, body not read', () => {
    const head = Buffer.from(
      'Received: from x\r\nSubject: one\r\n two\r\nFrom: Jane <jane@example.net>\r\n' +
        'To: a@example.org\r\nSubject: second\r\n\r\nFrom: body@example.net\r\n',
    );
    expect(headerSummary(head)).to.deep.equal([
      ['From', 'Jane <jane@example.net>'],
      ['To', 'a@example.org'],
      ['Subject', 'one two'],
    ]);
  });

  it('headerSummary: raw UTF-8 in a header is read as UTF-8', () => {
    const head = Buffer.from('Subject: Grüße\r\n\r\n', 'utf8');
    expect(headerSummary(head)).to.deep.equal([['Subject', 'Grüße']]);
  });
});

describe('queue tools: show', () => {
  it("withApiErrors: the API's errors (code: message) after the text, when it sent any", () => {
    expect(withApiErrors('API HTTP 503')).to.equal('API HTTP 503');
    expect(withApiErrors('API HTTP 400', [])).to.equal('API HTTP 400');
    expect(
      withApiErrors('API HTTP 400', [
        {
          code: 'invalid_field',
          message: 'thread_id unknown',
          deprecated: false,
        },
        { code: 'x' },
        null,
        'junk',
      ]),
    ).to.equal('API HTTP 400 (invalid_field: thread_id unknown; x)');
  });
});

describe('queue tools: usage and help', () => {
  const usage: Array<[Partial<QueueCommand>, string | null]> = [
    [{ action: 'list' }, null],
    [{ action: 'frob' }, 'unknown queue action "frob"'],
    [{ action: 'show' }, 'queue show needs a message ID'],
    [{ action: 'show', id: '../x' }, 'not a message ID: "../x"'],
    [{ action: 'retry' }, 'queue retry needs a message ID, --all'],
    [{ action: 'retry', id: 'A1', all: true }, 'an ID or selection options'],
    [{ action: 'retry', mailbox: 'mb' }, null],
    [{ action: 'purge', dead: true, held: true }, null],
    [
      { action: 'purge' },
      'queue purge needs a message ID, --all, --dead, --held',
    ],
    [{ action: 'list', mailbox: 'a', domain: 'b' }, 'not both'],
    [{ action: 'list', id: 'A1' }, 'queue list takes no ID'],
    [{ action: 'shape', by: 'sender' }, '--by takes mailbox or domain'],
    [{ action: 'shape', dead: true, held: true }, 'give --dead or --held'],
  ];
  for (const [command, problem] of usage) {
    it(`checkUsage(${JSON.stringify(command)}) ${problem ? `says "${problem}"` : 'is fine'}`, () => {
      const said = checkUsage(command as QueueCommand);
      if (problem === null) expect(said).to.equal(null);
      else expect(said).to.include(problem);
    });
  }

  for (const name of Object.keys(COMMANDS)) {
    it(`${name} has its own help: usage, options, exit codes`, () => {
      const text = helpText(name);
      expect(text.startsWith(`Usage: mailbridge ${name}`)).to.equal(true);
      expect(text).to.include('\nOptions:\n');
      expect(text).to.include('-h, --help');
      expect(text).to.include('Exit status:');
      expect(usageLine(name)).to.include(`(mailbridge ${name} --help`);
    });
  }
});
