// Unit tables for recipient routing: resolveRoute, groupByRoute and splitAddress.
import { expect } from 'chai';
import { configSchema, type RouteConfig } from '../../src/config/schema.js';
import { splitAddress } from '../../src/routing/address.js';
import { groupByRoute, resolveRoute } from '../../src/routing/resolve-route.js';

/** Routes as the configuration loader would give them (patterns lower-cased, defaults filled). */
function routes(table: unknown[]): RouteConfig[] {
  return configSchema.shape.routes.parse(table);
}

/** Least specific first, so that table order cannot be what makes the right one win. */
const TABLE = routes([
  { match: '*', mailbox_id: 'mb-default' },
  {
    match: '*@example.org',
    mailbox_id: 'mb-sales',
    thread_from_subaddress: true,
  },
  {
    match: 'Support@Example.COM',
    mailbox_id: 'mb-support',
    thread_from_subaddress: true,
  },
  {
    match: 'support+vip@example.com',
    mailbox_id: 'mb-vip',
    thread_from_subaddress: true,
  },
  { match: 'billing@example.com', mailbox_id: 'mb-billing' },
]);

/** [recipient, mailbox_id of the chosen route, thread id] */
type Row = [recipient: string, mailbox: string, threadId?: string];

const ROWS: Row[] = [
  // exact, case-insensitive
  ['support@example.com', 'mb-support'],
  ['SUPPORT@EXAMPLE.COM', 'mb-support'],
  ['  support@example.com  ', 'mb-support'],
  // +subaddress ignored for matching; the route threads from it
  ['support+T123@example.com', 'mb-support', 'T123'],
  ['Support+t-9@Example.COM', 'mb-support', 't-9'],
  ['support+a+b@example.com', 'mb-support', 'a+b'],
  // empty subaddress: the base address, no thread
  ['support+@example.com', 'mb-support'],
  // an exact pattern that itself holds +detail: matched as written, no thread
  ['support+vip@example.com', 'mb-vip'],
  ['SUPPORT+VIP@EXAMPLE.COM', 'mb-vip'],
  ['support+vip2@example.com', 'mb-support', 'vip2'],
  // a route without thread_from_subaddress never threads
  ['billing+T1@example.com', 'mb-billing'],
  ['billing@example.com', 'mb-billing'],
  // *@domain, with threading
  ['anyone@example.org', 'mb-sales'],
  ['anyone@EXAMPLE.ORG', 'mb-sales'],
  ['anyone+T7@example.org', 'mb-sales', 'T7'],
  // a subdomain is another domain
  ['anyone@sub.example.org', 'mb-default'],
  // * takes the rest; it does not thread
  ['someone@elsewhere.test', 'mb-default'],
  ['someone+T1@elsewhere.test', 'mb-default'],
  ['+lead@example.com', 'mb-default'],
  // a local part holding "@" in quotes: the domain is after the last "@"
  ['"a@b"@example.org', 'mb-sales'],
];

/** The table in every rotation and reversed: the most specific route wins whatever the order. */
function orders(table: RouteConfig[]): Array<[string, RouteConfig[]]> {
  const out: Array<[string, RouteConfig[]]> = [];
  for (let i = 0; i < table.length; i++) {
    out.push([`rotated ${i}`, [...table.slice(i), ...table.slice(0, i)]]);
  }
  out.push(['reversed', [...table].reverse()]);
  return out;
}

describe('routing', () => {
  describe('resolveRoute', () => {
    for (const [recipient, mailbox, threadId] of ROWS) {
      it(`${JSON.stringify(recipient)} -> ${mailbox}${threadId ? ` thread ${threadId}` : ''}`, () => {
        const match = resolveRoute(recipient, TABLE);
        expect(match, 'a route').to.not.equal(null);
        expect(match?.route.mailbox_id).to.equal(mailbox);
        expect(match?.route).to.equal(TABLE[match?.index ?? -1]);
        expect(match?.threadId).to.equal(threadId);
      });
    }

    describe('most specific wins whatever the table order', () => {
      for (const [name, table] of orders(TABLE)) {
        it(name, () => {
          for (const [recipient, mailbox, threadId] of ROWS) {
            const match = resolveRoute(recipient, table);
            expect(match?.route.mailbox_id, recipient).to.equal(mailbox);
            expect(match?.threadId, recipient).to.equal(threadId);
            expect(table[match?.index ?? -1], recipient).to.equal(match?.route);
          }
        });
      }
    });

    it('the first of two identical patterns wins', () => {
      const table = routes([
        { match: 'a@example.com', mailbox_id: 'first' },
        { match: 'A@example.com', mailbox_id: 'second' },
      ]);
      expect(resolveRoute('a@example.com', table)?.index).to.equal(0);
    });

    const noMatch: Array<[title: string, recipient: string]> = [
      ['another domain', 'x@example.net'],
      ['a subdomain of a routed domain', 'x@mail.example.org'],
      ['a near miss of an exact address', 'supp0rt@example.com'],
      ['no "@"', 'support'],
      ['nothing before "@"', '@example.com'],
      ['nothing after "@"', 'support@'],
      ['empty', ''],
      ['blank', '   '],
    ];
    const strict = routes([
      { match: 'support@example.com', mailbox_id: 'mb-support' },
      { match: '*@example.org', mailbox_id: 'mb-sales' },
    ]);
    for (const [title, recipient] of noMatch) {
      it(`no match -> null: ${title}`, () => {
        expect(resolveRoute(recipient, strict)).to.equal(null);
      });
    }

    const malformed = ['support', '@example.com', 'support@', '', ' '];
    for (const recipient of malformed) {
      it(`a malformed address matches not even "*": ${JSON.stringify(recipient)}`, () => {
        expect(resolveRoute(recipient, TABLE)).to.equal(null);
      });
    }

    it('an empty route table matches nothing', () => {
      expect(resolveRoute('support@example.com', [])).to.equal(null);
    });
  });

  describe('postmaster (RFC 5321 4.5.1)', () => {
    /** Exact and domain routes, no "*"; billing@ takes postmaster mail. */
    const NAMED = routes([
      { match: 'support@example.com', mailbox_id: 'mb-support' },
      {
        match: 'billing@example.com',
        mailbox_id: 'mb-billing',
        postmaster: true,
      },
      {
        match: '*@example.org',
        mailbox_id: 'mb-sales',
        thread_from_subaddress: true,
      },
      { match: 'postmaster@example.net', mailbox_id: 'mb-abuse' },
      { match: 'info@example.net', mailbox_id: 'mb-info' },
    ]);
    /** [table, recipient, mailbox_id of the chosen route, or null for no route] */
    const rows: Array<[string, RouteConfig[], string, string | null]> = [
      ['named', NAMED, 'postmaster', 'mb-billing'],
      ['named', NAMED, 'POSTMASTER', 'mb-billing'],
      ['named', NAMED, ' PostMaster ', 'mb-billing'],
      // a domain of exact routes only
      ['named', NAMED, 'postmaster@example.com', 'mb-billing'],
      ['named', NAMED, 'Postmaster@EXAMPLE.com', 'mb-billing'],
      ['named', NAMED, 'postmaster+x@example.com', 'mb-billing'],
      // the named route wins over the domain's own "*@domain" route
      ['named', NAMED, 'postmaster@example.org', 'mb-billing'],
      // an exact route for the address still wins
      ['named', NAMED, 'postmaster@example.net', 'mb-abuse'],
      // no route takes the domain: refused, never an open door
      ['named', NAMED, 'postmaster@elsewhere.test', null],
      ['named', NAMED, 'postmaster@sub.example.org', null],
      // only the local part "postmaster" is postmaster
      ['named', NAMED, 'postmasters@example.com', null],
      ['named', NAMED, 'postmaster@', null],
      // the default with a "*" route: <postmaster> to "*", the rest routed as usual
      ['default', TABLE, 'postmaster', 'mb-default'],
      ['default', TABLE, 'Postmaster', 'mb-default'],
      ['default', TABLE, 'postmaster@example.org', 'mb-sales'],
      ['default', TABLE, 'postmaster@example.com', 'mb-default'],
      ['default', TABLE, 'postmaster@elsewhere.test', 'mb-default'],
    ];
    // the default without "*": nothing new is accepted
    const strict = routes([
      { match: 'support@example.com', mailbox_id: 'mb-support' },
      { match: '*@example.org', mailbox_id: 'mb-sales' },
    ]);
    rows.push(
      ['neither', strict, 'postmaster', null],
      ['neither', strict, 'postmaster@example.com', null],
      ['neither', strict, 'postmaster@example.org', 'mb-sales'],
    );
    for (const [name, table, recipient, mailbox] of rows) {
      it(`${name}: ${JSON.stringify(recipient)} -> ${mailbox ?? 'no route'}`, () => {
        const match = resolveRoute(recipient, table);
        if (mailbox === null) {
          expect(match).to.equal(null);
          return;
        }
        expect(match?.route.mailbox_id).to.equal(mailbox);
        expect(table[match?.index ?? -1]).to.equal(match?.route);
      });
    }

    it('postmaster mail has no thread id, even from a threading route', () => {
      const table = routes([
        {
          match: '*@example.org',
          thread_from_subaddress: true,
          postmaster: true,
        },
      ]);
      expect(resolveRoute('postmaster+T1@example.org', table)).to.deep.equal({
        route: table[0],
        index: 0,
      });
    });

    it('groupByRoute puts postmaster with its route', () => {
      const groups = groupByRoute(
        ['postmaster', 'billing@example.com', 'postmaster@example.org'],
        NAMED,
      );
      expect(groups.map(g => [g.route.mailbox_id, g.recipients])).to.deep.equal(
        [
          [
            'mb-billing',
            ['postmaster', 'billing@example.com', 'postmaster@example.org'],
          ],
        ],
      );
    });
  });

  describe('groupByRoute', () => {
    const rows: Array<{
      title: string;
      recipients: string[];
      table?: RouteConfig[];
      groups: Array<{
        mailbox?: string;
        recipients: string[];
        threadId?: string;
      }>;
    }> = [
      {
        title: 'no recipients: no groups',
        recipients: [],
        groups: [],
      },
      {
        title: 'one recipient: one group',
        recipients: ['support@example.com'],
        groups: [
          { mailbox: 'mb-support', recipients: ['support@example.com'] },
        ],
      },
      {
        title: 'several routes, in the order they were first used',
        recipients: [
          'a@example.org',
          'support@example.com',
          'b@example.org',
          'x@other.test',
          'Support+T5@example.com',
        ],
        groups: [
          {
            mailbox: 'mb-sales',
            recipients: ['a@example.org', 'b@example.org'],
          },
          {
            mailbox: 'mb-support',
            recipients: ['support@example.com', 'Support+T5@example.com'],
            threadId: 'T5',
          },
          { mailbox: 'mb-default', recipients: ['x@other.test'] },
        ],
      },
      {
        title: 'the first thread id of a group wins',
        recipients: ['support+T1@example.com', 'support+T2@example.com'],
        groups: [
          {
            mailbox: 'mb-support',
            recipients: ['support+T1@example.com', 'support+T2@example.com'],
            threadId: 'T1',
          },
        ],
      },
      {
        title: 'recipients kept as written',
        recipients: ['ANYONE@Example.ORG'],
        groups: [{ mailbox: 'mb-sales', recipients: ['ANYONE@Example.ORG'] }],
      },
      {
        title: 'recipients without a route, or malformed, left out',
        recipients: ['nobody@example.net', 'support@example.com', 'broken'],
        table: routes([
          { match: 'support@example.com', mailbox_id: 'mb-support' },
        ]),
        groups: [
          { mailbox: 'mb-support', recipients: ['support@example.com'] },
        ],
      },
      {
        title: 'no recipient has a route: no groups',
        recipients: ['nobody@example.net'],
        table: routes([{ match: 'support@example.com' }]),
        groups: [],
      },
    ];
    for (const row of rows) {
      it(row.title, () => {
        const table = row.table ?? TABLE;
        const groups = groupByRoute(row.recipients, table);
        expect(
          groups.map(g => ({
            mailbox: g.route.mailbox_id,
            recipients: g.recipients,
            threadId: g.threadId,
          })),
        ).to.deep.equal(
          row.groups.map(g => ({
            mailbox: g.mailbox,
            recipients: g.recipients,
            threadId: g.threadId,
          })),
        );
        for (const group of groups) {
          expect(table[group.index]).to.equal(group.route);
        }
      });
    }
  });

  describe('splitAddress', () => {
    const rows: Array<
      [
        address: string,
        parts: { local: string; detail?: string; domain: string } | null,
      ]
    > = [
      ['user@example.com', { local: 'user', domain: 'example.com' }],
      ['User@Example.COM', { local: 'user', domain: 'example.com' }],
      [
        'User+Detail@Example.COM',
        { local: 'user', detail: 'Detail', domain: 'example.com' },
      ],
      ['user+@example.com', { local: 'user', domain: 'example.com' }],
      [
        'a+b+c@example.com',
        { local: 'a', detail: 'b+c', domain: 'example.com' },
      ],
      ['+detail@example.com', { local: '+detail', domain: 'example.com' }],
      ['"a@b"@example.com', { local: '"a@b"', domain: 'example.com' }],
      ['user@localhost', { local: 'user', domain: 'localhost' }],
      ['no-at-sign', null],
      ['@example.com', null],
      ['user@', null],
      ['@', null],
      ['', null],
    ];
    for (const [address, parts] of rows) {
      it(`${JSON.stringify(address)}`, () => {
        const actual = splitAddress(address);
        if (parts === null) {
          expect(actual).to.equal(null);
          return;
        }
        expect(actual).to.not.equal(null);
        expect({
          local: actual?.local,
          detail: actual?.detail,
          domain: actual?.domain,
        }).to.deep.equal({ detail: undefined, ...parts });
      });
    }
  });
});
