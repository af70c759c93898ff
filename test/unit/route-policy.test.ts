// pipeline/route-policy.ts: each route's noise policy (autoReplies, bulk) before the sender's,
// one row per case; the header block read from bytes or from a file.
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SenderAuth } from '../../src/auth/verdict.js';
import type { RouteConfig } from '../../src/config/schema.js';
import type { Envelope } from '../../src/mail/envelope.js';
import {
  applyRoutePolicy,
  type RoutePolicy,
} from '../../src/pipeline/route-policy.js';
import { readHeaderBlock } from '../../src/mail/header-block.js';
import type { RouteGroup } from '../../src/routing/resolve-route.js';
import { loadConfig } from '../../src/config/load-config.js';
import { toApiPayload } from '../../src/map/to-api-payload.js';
import { parseMessage } from '../../src/parse/parse-message.js';

const SMTP: Envelope = {
  id: 'Q1',
  mailFrom: 'jane@example.net',
  rcptTo: ['a@example.com'],
  remoteAddress: '127.0.0.1',
  receivedAt: '2026-01-01T00:00:00.000Z',
};

const OOO =
  'Auto-Submitted: auto-replied\r\nSubject: Away\r\n\r\nBack Monday.\r\n';
const LIST = 'List-Id: <dev.example.org>\r\nX-Priority: 1\r\n\r\nHi all\r\n';
const PERSON = 'From: jane@example.net\r\nSubject: Help\r\n\r\nPrinter.\r\n';

/** A failed sender with a DMARC policy of quarantine: held by enforce, guarded by record. */
const QUARANTINE: SenderAuth = {
  spf: 'fail',
  dkim: 'none',
  dmarc: 'fail',
  policy: 'quarantine',
  arc: 'none',
  domain: 'example.net',
  verdict: 'fail',
};

function group(
  index: number,
  route: Partial<RouteConfig> = {},
  extra: Partial<RouteGroup> = {},
): RouteGroup {
  return {
    route: { match: '*', thread_from_subaddress: false, fields: {}, ...route },
    index,
    recipients: ['a@example.com'],
    ...extra,
  } as RouteGroup;
}

/** What became of each route: post, post-guarded, held, dropped, deferred. */
function fates(policy: RoutePolicy): string[] {
  const out: Array<[number, string]> = [
    ...policy.post.map(
      g => [g.index, g.untrustedSender ? 'guard' : 'post'] as [number, string],
    ),
    ...policy.held.map(h => [h.index, `held: ${h.reason}`] as [number, string]),
    ...policy.dropped.map(
      d => [d.index, `dropped: ${d.reason}`] as [number, string],
    ),
    ...policy.deferred.map(d => [d.index, 'deferred'] as [number, string]),
  ];
  return out.sort((a, b) => a[0] - b[0]).map(([, fate]) => fate);
}

describe('applyRoutePolicy', () => {
  const rows: Array<{
    name: string;
    raw: string;
    groups: RouteGroup[];
    envelope?: Envelope;
    known?: SenderAuth;
    fates: string[];
  }> = [
    {
      name: 'a person: every route posts',
      raw: PERSON,
      groups: [group(0), group(1, { autoReplies: 'drop', bulk: 'drop' })],
      fates: ['post', 'post'],
    },
    {
      name: 'an auto-reply, default policy: held',
      raw: OOO,
      groups: [group(0)],
      fates: [
        'held: auto-reply: Auto-Submitted: auto-replied (autoReplies: hold)',
      ],
    },
    {
      name: 'an auto-reply per route: deliver, hold, drop',
      raw: OOO,
      groups: [
        group(0, { autoReplies: 'deliver' }),
        group(1, { autoReplies: 'hold' }),
        group(2, { autoReplies: 'drop' }),
      ],
      fates: [
        'post',
        'held: auto-reply: Auto-Submitted: auto-replied (autoReplies: hold)',
        'dropped: auto-reply: Auto-Submitted: auto-replied (autoReplies: drop)',
      ],
    },
    {
      name: 'a route released by an operator is never held or dropped again',
      raw: OOO,
      groups: [group(0, { autoReplies: 'drop' }, { released: true })],
      fates: ['post'],
    },
    {
      name: 'list mail, default policy: posted',
      raw: LIST,
      groups: [
        group(0),
        group(1, { bulk: 'hold' }),
        group(2, { bulk: 'drop' }),
      ],
      fates: [
        'post',
        'held: bulk: List-Id (bulk: hold)',
        'dropped: bulk: List-Id (bulk: drop)',
      ],
    },
    {
      name: 'the null sender of an SMTP envelope: an auto-reply',
      raw: PERSON,
      envelope: { ...SMTP, mailFrom: null },
      groups: [group(0, { autoReplies: 'drop' })],
      fates: [
        'dropped: auto-reply: null sender (MAIL FROM:<>) (autoReplies: drop)',
      ],
    },
    {
      name: 'no envelope sender and no client (inject without --from): not judged',
      raw: PERSON,
      envelope: { ...SMTP, mailFrom: null, remoteAddress: undefined },
      groups: [group(0, { autoReplies: 'drop' })],
      fates: ['post'],
    },
    {
      name: 'a failed sender that is an auto-reply: the noise policy wins over the guard',
      raw: OOO,
      known: QUARANTINE,
      groups: [group(0), group(1, { autoReplies: 'deliver' })],
      fates: [
        'held: auto-reply: Auto-Submitted: auto-replied (autoReplies: hold)',
        'guard',
      ],
    },
    {
      name: 'a failed sender, enforce: held for its authentication',
      raw: PERSON,
      known: QUARANTINE,
      groups: [group(0, { senderAuth: 'enforce' })],
      fates: [
        'held: sender authentication: dmarc=fail (p=quarantine) spf=fail dkim=none arc=none for example.net',
      ],
    },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      const policy = await applyRoutePolicy(row.groups, {
        raw: Buffer.from(row.raw),
        envelope: row.envelope ?? SMTP,
        known: row.known,
      });
      expect(fates(policy)).to.deep.equal(row.fates);
    });
  }

  it('marks the routes that post list mail, so that its priority is not taken', async () => {
    const policy = await applyRoutePolicy([group(0)], {
      raw: Buffer.from(LIST),
      envelope: SMTP,
    });
    expect(policy.noise?.kind).to.equal('bulk');
    expect(policy.post[0]?.noise).to.equal('bulk');
  });

  it('a list post marked "Priority: urgent" is not posted urgent', async () => {
    const file = fileURLToPath(
      new URL(
        '../fixtures/corpus/signed-encrypted/james-pgpSignedMail.eml',
        import.meta.url,
      ),
    );
    const { mapping } = loadConfig({ env: { NODE_ENV: 'test' } });
    const policy = await applyRoutePolicy([group(0)], {
      raw: { path: file },
      envelope: SMTP,
    });
    const message = await parseMessage(file);
    try {
      const body = (g: RouteGroup) =>
        toApiPayload({ message, envelope: SMTP, group: g, mapping });
      // the header alone would make it high (mapping.priority.high: 1)
      expect(message.priority).to.equal('high');
      expect(body(group(0)).priority).to.equal(1);
      expect(body(policy.post[0]!)).not.to.have.property('priority');
    } finally {
      await message.dispose();
    }
  });

  it('reads the header block of a file, from its start offset', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'route-policy-'));
    try {
      const path = join(dir, 'm');
      await writeFile(path, `{"spool":"header"}\n${OOO}`);
      const start = '{"spool":"header"}\n'.length;
      expect(await readHeaderBlock({ path, start })).to.equal(
        'Auto-Submitted: auto-replied\r\nSubject: Away',
      );
      const policy = await applyRoutePolicy([group(0)], {
        raw: { path, start },
        envelope: SMTP,
      });
      expect(policy.held).to.have.length(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
