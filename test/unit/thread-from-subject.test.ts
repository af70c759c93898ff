// threadFromSubject (the subject tag's thread id) and fromReplyTo: the pure parts and the mapper's rows.
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load-config.js';
import type { MappingConfig, RouteConfig } from '../../src/config/schema.js';
import { subjectPatternProblem } from '../../src/config/subject-pattern.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import {
  SUBJECT_MATCH_CHARS,
  threadFromSubject,
} from '../../src/map/thread-from-subject.js';
import { toApiPayload } from '../../src/map/to-api-payload.js';
import type {
  MailAddress,
  ParsedMessage,
} from '../../src/parse/parsed-message.js';
import type { RouteGroup } from '../../src/routing/resolve-route.js';

const TAG = '\\[#(T\\d+)\\]';

describe('threadFromSubject', () => {
  const rows: Array<[string, string | undefined, string | undefined]> = [
    ['Re: [#T123] Printer', TAG, 'T123'],
    ['[#T1] first [#T2] second', TAG, 'T1'],
    ['AW: RE: Fwd: [#T77]', TAG, 'T77'],
    ['Printer on fire', TAG, undefined],
    ['[#X123] not a ticket', TAG, undefined],
    ['', TAG, undefined],
    ['Re: [#T123] Printer', undefined, undefined],
    // the first group, even when a later one matched too
    ['Ticket 42 / case 7', 'Ticket (\\d+) / case (\\d+)', '42'],
    // a group that took no part, or matched only blanks, is no id
    ['Printer', '(#\\d+)?Printer', undefined],
    ['[  ] Printer', '\\[(\\s*)\\]', undefined],
    // trimmed
    ['[# T5 ] x', '\\[#([^\\]]+)\\]', 'T5'],
    // a case-insensitive part, the JavaScript way
    ['re: [#t9]', '\\[#((?i:t)\\d+)\\]', 't9'],
    // a pattern that does not compile finds nothing (the configuration refuses it)
    ['[#T1]', '([', undefined],
    // nor does one the configuration refuses for backtracking
    [`${'a'.repeat(40)}!`, '^(a+)+$', undefined],
  ];
  for (const [subject, pattern, expected] of rows) {
    it(`${JSON.stringify(subject)} ~ ${String(pattern)} -> ${String(expected)}`, () => {
      expect(threadFromSubject(subject, pattern)).to.equal(expected);
    });
  }

  it(`looks at the first ${SUBJECT_MATCH_CHARS} characters only`, () => {
    const padding = 'x'.repeat(SUBJECT_MATCH_CHARS - '[#T1]'.length);
    expect(threadFromSubject(`${padding}[#T1]`, TAG)).to.equal('T1');
    expect(threadFromSubject(`${padding}x[#T1]`, TAG)).to.equal(undefined);
  });

  it('a tag past the cap of a 1 MB subject is not looked for', () => {
    // the cap bounds every pattern's work, a backtracking one included
    const subject = `${'a'.repeat(1_000_000)}[#T1]`;
    expect(threadFromSubject(subject, TAG)).to.equal(undefined);
    expect(threadFromSubject(subject, '^a*(a*)b')).to.equal(undefined);
  });
});

describe('subjectPatternProblem', () => {
  const rows: Array<[string, RegExp | undefined]> = [
    [TAG, undefined],
    ['#(\\d+)', undefined],
    ['(?:x)(y)', undefined],
    ['([', /^is not a valid regular expression/],
    ['(?<id>T\\d+)', undefined],
    ['T\\d+', /^needs a capturing group/],
    ['(?:T\\d+)', /^needs a capturing group/],
    // nested repetition: exponential backtracking, refused (and never compiled for a message)
    ['^(a+)+b', /^has a repeated group that holds a repetition/],
    ['((\\w*)\\s)*x', /^has a repeated group/],
    ['(?:(T\\d+){2,})+', /^has a repeated group/],
    ['((x+))*', /^has a repeated group/],
    // repetition at one level only, or a bounded one around it, is fine
    ['(a+)?b', undefined],
    ['(a+){1}b', undefined],
    ['(a+)b+', undefined],
    ['([+*]+)', undefined],
    ['(\\(+)', undefined],
    ['[(](a+)[)]+', undefined],
  ];
  for (const [pattern, problem] of rows) {
    it(`${pattern} -> ${String(problem ?? 'fine')}`, () => {
      const found = subjectPatternProblem(pattern);
      if (problem) expect(found).to.match(problem);
      else expect(found).to.equal(undefined);
    });
  }
});

describe('route keys threadFromSubject and fromReplyTo in the configuration', () => {
  const load = (route: Record<string, unknown>) =>
    loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: { routes: [{ match: '*', ...route }] },
    });

  it('both are optional, and absent by default', () => {
    const [route] = load({}).routes;
    expect(route).to.not.have.property('threadFromSubject');
    expect(route).to.not.have.property('fromReplyTo');
  });

  it('are taken as given', () => {
    const [route] = load({ threadFromSubject: TAG, fromReplyTo: true }).routes;
    expect(route?.threadFromSubject).to.equal(TAG);
    expect(route?.fromReplyTo).to.equal(true);
  });

  const wrong: Array<[Record<string, unknown>, RegExp]> = [
    [
      { threadFromSubject: '([' },
      /^routes\.0\.threadFromSubject: is not a valid regular expression/,
    ],
    [
      { threadFromSubject: 'T\\d+' },
      /^routes\.0\.threadFromSubject: needs a capturing group/,
    ],
    [{ threadFromSubject: '' }, /^routes\.0\.threadFromSubject: /],
    [{ threadFromSubject: 5 }, /^routes\.0\.threadFromSubject: /],
    [
      { threadFromSubject: '(a+)+$' },
      /^routes\.0\.threadFromSubject: has a repeated group/,
    ],
    [{ fromReplyTo: 'yes' }, /^routes\.0\.fromReplyTo: /],
  ];
  for (const [route, message] of wrong) {
    it(`${JSON.stringify(route)} is a configuration error naming the key`, () => {
      expect(() => load(route)).to.throw(message);
    });
  }
});

const MAPPING: MappingConfig = {
  content: 'auto',
  addressFormat: 'address',
  messageIdBrackets: true,
  sanitizeHtml: true,
  remoteImages: 'block',
  maxHtmlBytes: 1024 * 1024,
  priority: { high: 1, normal: null, low: 5 },
};

function addr(address: string, name = ''): MailAddress {
  return { address, name };
}

function map(
  message: Partial<ParsedMessage>,
  route: Partial<RouteConfig>,
  group: Partial<RouteGroup> = {},
): ApiPayload {
  return toApiPayload({
    message: {
      from: addr('noreply@forms.example.com', 'Web form'),
      to: [addr('support@example.com')],
      cc: [],
      subject: 'Re: [#T123] Printer',
      text: 'It is on fire.',
      messageId: '<m2@example.com>',
      inReplyTo: '<m1@example.com>',
      references: [],
      priority: 'normal',
      attachments: [],
      digest: '0'.repeat(64),
      size: 200,
      dispose: async () => undefined,
      ...message,
    },
    envelope: {
      id: 'q1',
      mailFrom: 'bounce@forms.example.com',
      rcptTo: ['support@example.com'],
      receivedAt: '2025-01-01T00:00:00.000Z',
    },
    group: {
      route: {
        match: '*',
        thread_from_subaddress: false,
        fields: {},
        ...route,
      },
      index: 0,
      recipients: ['support@example.com'],
      ...group,
    },
    mapping: MAPPING,
  });
}

describe('toApiPayload with threadFromSubject', () => {
  const rows: Array<{
    title: string;
    route: Partial<RouteConfig>;
    group?: Partial<RouteGroup>;
    subject?: string;
    thread?: string;
    replyTo?: string;
  }> = [
    {
      title: 'the subject tag is the thread id',
      route: { threadFromSubject: TAG },
      thread: 'T123',
      replyTo: '<m1@example.com>',
    },
    {
      title: 'no tag, no thread id',
      route: { threadFromSubject: TAG },
      subject: 'Printer',
      replyTo: '<m1@example.com>',
    },
    {
      title: 'without the key the tag means nothing',
      route: {},
      replyTo: '<m1@example.com>',
    },
    {
      title: 'the +subaddress wins over the subject',
      route: { threadFromSubject: TAG, thread_from_subaddress: true },
      group: { threadId: 'T9' },
      thread: 'T9',
      replyTo: '<m1@example.com>',
    },
    {
      title:
        'the thread guard: a sender that failed authentication gets none from the subject',
      route: { threadFromSubject: TAG },
      group: { untrustedSender: true },
    },
    {
      title: 'the thread guard: nor from the +subaddress',
      route: { threadFromSubject: TAG },
      group: { untrustedSender: true, threadId: 'T9' },
    },
    {
      title: 'controls in the tag are removed',
      route: { threadFromSubject: '\\[#([^\\]]+)\\]' },
      subject: 'Re: [#T1\u0000\u009b23] x',
      thread: 'T123',
      replyTo: '<m1@example.com>',
    },
  ];
  for (const row of rows) {
    it(row.title, () => {
      const message = row.subject === undefined ? {} : { subject: row.subject };
      const body = map(message, row.route, row.group);
      expect(body.thread_id).to.equal(row.thread);
      expect(body.reply_to_ext_msg_id).to.equal(row.replyTo);
      if (!row.thread) expect(body).to.not.have.property('thread_id');
    });
  }
});

describe('toApiPayload with fromReplyTo', () => {
  const customer = addr('jane@example.org', 'Jane');
  const rows: Array<{
    title: string;
    fromReplyTo?: boolean;
    message: Partial<ParsedMessage>;
    from: string | undefined;
  }> = [
    {
      title: 'from is the Reply-To address',
      fromReplyTo: true,
      message: { replyTo: [customer] },
      from: 'jane@example.org',
    },
    {
      title: 'off (the default): from is the From address',
      message: { replyTo: [customer] },
      from: 'noreply@forms.example.com',
    },
    {
      title: 'two Reply-To addresses: the From address',
      fromReplyTo: true,
      message: { replyTo: [customer, addr('bob@example.org')] },
      from: 'noreply@forms.example.com',
    },
    {
      title: 'no Reply-To: the From address',
      fromReplyTo: true,
      message: {},
      from: 'noreply@forms.example.com',
    },
    {
      title: 'a Reply-To entry without an address does not count',
      fromReplyTo: true,
      message: { replyTo: [addr('', 'list'), customer] },
      from: 'jane@example.org',
    },
    {
      title: 'no From and no usable Reply-To: the envelope sender',
      fromReplyTo: true,
      message: { from: undefined, replyTo: [addr(' ')] },
      from: 'bounce@forms.example.com',
    },
    {
      title: 'controls in the Reply-To address are removed',
      fromReplyTo: true,
      message: { replyTo: [addr('jane\r\n@example.org')] },
      from: 'jane @example.org',
    },
  ];
  for (const row of rows) {
    it(row.title, () => {
      const route =
        row.fromReplyTo === undefined ? {} : { fromReplyTo: row.fromReplyTo };
      expect(map(row.message, route).from).to.equal(row.from);
    });
  }
});
