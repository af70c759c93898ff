// Unit tables for toApiPayload: every row of the contract's "body posted" table, from hand-made messages.
import { expect } from 'chai';
import type { MappingConfig, RouteConfig } from '../../src/config/schema.js';
import type { Envelope } from '../../src/mail/envelope.js';
import type { ApiPayload } from '../../src/map/api-payload.js';
import { generatedId } from '../../src/mail/message-id.js';
import { NO_BODY_NOTE, toApiPayload } from '../../src/map/to-api-payload.js';
import type {
  MailAddress,
  ParsedMessage,
} from '../../src/parse/parsed-message.js';
import type { RouteGroup } from '../../src/routing/resolve-route.js';

const DIGEST = '0123456789abcdef'.repeat(4);

const MAPPING: MappingConfig = {
  content: 'auto',
  addressFormat: 'address',
  messageIdBrackets: true,
  sanitizeHtml: true,
  remoteImages: 'block',
  maxHtmlBytes: 1024 * 1024,
  priority: { high: 1, normal: null, low: 5 },
};

const CATCH_ALL: RouteConfig = {
  match: '*',
  thread_from_subaddress: false,
  fields: {},
};

/** What one row changes of the baseline message, envelope, route group and mapping. */
interface Input {
  message?: Partial<ParsedMessage>;
  envelope?: Partial<Envelope>;
  group?: Partial<RouteGroup>;
  route?: Partial<RouteConfig>;
  mapping?: Partial<MappingConfig>;
}

/** One row: `expected` undefined means the key must be absent from the body. */
interface Row {
  title: string;
  input: Input;
  expected: unknown;
}

const NO_BODY_HTML = `<div>${NO_BODY_NOTE}</div>`;

const ATTACHMENT = {
  filename: 'scan.pdf',
  contentType: 'application/pdf',
  path: '/nonexistent/scan.pdf',
  size: 10,
};

function addr(address: string, name = ''): MailAddress {
  return { address, name };
}

/** A plain message to support@example.com, changed by `over`. */
function message(over: Partial<ParsedMessage> = {}): ParsedMessage {
  return {
    from: addr('jane@example.com', 'Jane Doe'),
    to: [addr('support@example.com')],
    cc: [],
    subject: 'Printer on fire',
    text: 'It is on fire.',
    messageId: '<m1@example.com>',
    references: [],
    priority: 'normal',
    attachments: [],
    digest: DIGEST,
    size: 200,
    dispose: async () => undefined,
    ...over,
  };
}

function map(input: Input = {}): ApiPayload {
  const envelope: Envelope = {
    id: 'q1',
    mailFrom: 'bounce@example.com',
    rcptTo: ['support@example.com'],
    receivedAt: '2025-01-01T00:00:00.000Z',
    ...input.envelope,
  };
  const group: RouteGroup = {
    route: { ...CATCH_ALL, ...input.route },
    index: 0,
    recipients: envelope.rcptTo,
    ...input.group,
  };
  return toApiPayload({
    message: message(input.message),
    envelope,
    group,
    mapping: { ...MAPPING, ...input.mapping },
  });
}

/** Runs a table of rows against one key of the body. */
function fieldTable(key: string, rows: Row[]): void {
  describe(key, () => {
    for (const row of rows) {
      it(row.title, () => {
        const body = map(row.input);
        if (row.expected === undefined) {
          expect(body).to.not.have.property(key);
        } else {
          expect(body[key]).to.deep.equal(row.expected);
        }
      });
    }
  });
}

describe('toApiPayload: the raw digest', () => {
  /** map() of a message whose digest counts its reads (parse-message.ts hashes when read). */
  function reads(over: Partial<ParsedMessage>): number {
    let count = 0;
    const counted = Object.defineProperty(message(over), 'digest', {
      get: () => (count++, DIGEST),
    });
    toApiPayload({
      message: counted,
      envelope: {
        id: 'q1',
        mailFrom: 'bounce@example.com',
        rcptTo: ['support@example.com'],
        receivedAt: '2025-01-01T00:00:00.000Z',
      },
      group: {
        route: CATCH_ALL,
        index: 0,
        recipients: ['support@example.com'],
      },
      mapping: MAPPING,
    });
    return count;
  }

  it('is not read for a message with a Message-ID', () => {
    expect(reads({})).to.equal(0);
  });

  it('is read for a message without one (the seed of its generated id)', () => {
    expect(reads({ messageId: undefined })).to.equal(1);
  });
});

describe('toApiPayload', () => {
  fieldTable('from', [
    {
      title: 'the From header address',
      input: {},
      expected: 'jane@example.com',
    },
    {
      title: 'the envelope sender when there is no From',
      input: { message: { from: undefined } },
      expected: 'bounce@example.com',
    },
    {
      title: 'the envelope sender when the From address is empty',
      input: { message: { from: addr('', 'Broken') } },
      expected: 'bounce@example.com',
    },
    {
      title: 'left out with no From and the null sender',
      input: { message: { from: undefined }, envelope: { mailFrom: null } },
      expected: undefined,
    },
    {
      title: 'addressFormat full: Name <addr>',
      input: { mapping: { addressFormat: 'full' } },
      expected: 'Jane Doe <jane@example.com>',
    },
    {
      title: 'addressFormat full without a name: the bare address',
      input: {
        mapping: { addressFormat: 'full' },
        message: { from: addr('jane@example.com') },
      },
      expected: 'jane@example.com',
    },
    {
      title: 'addressFormat full quotes a name with a comma',
      input: {
        mapping: { addressFormat: 'full' },
        message: { from: addr('jane@example.com', 'Doe, Jane') },
      },
      expected: '"Doe, Jane" <jane@example.com>',
    },
    {
      title: 'addressFormat full escapes quotes and backslashes',
      input: {
        mapping: { addressFormat: 'full' },
        message: { from: addr('jane@example.com', 'Jane "JD" \\ Doe') },
      },
      expected: '"Jane \\"JD\\" \\\\ Doe" <jane@example.com>',
    },
    {
      title: 'addressFormat full quotes a name holding @ or <>',
      input: {
        mapping: { addressFormat: 'full' },
        message: { from: addr('jane@example.com', 'jane@evil <x>') },
      },
      expected: '"jane@evil <x>" <jane@example.com>',
    },
    {
      title: 'addressFormat full quotes a non-ASCII name',
      input: {
        mapping: { addressFormat: 'full' },
        message: { from: addr('jose@example.com', 'José Núñez') },
      },
      expected: '"José Núñez" <jose@example.com>',
    },
    {
      title: 'addressFormat full leaves an atext name with a dot unquoted',
      input: {
        mapping: { addressFormat: 'full' },
        message: { from: addr('jd@example.com', 'J. Doe') },
      },
      expected: 'J. Doe <jd@example.com>',
    },
    {
      title: 'addressFormat full does not apply to the envelope sender',
      input: {
        mapping: { addressFormat: 'full' },
        message: { from: undefined },
      },
      expected: 'bounce@example.com',
    },
    {
      title:
        'addressFormat full: CR/LF in the name become a space (header injection, regression)',
      input: {
        mapping: { addressFormat: 'full' },
        message: {
          from: addr('jane@example.com', 'Jane\r\nBcc: victim@example.net'),
        },
      },
      expected: '"Jane Bcc: victim@example.net" <jane@example.com>',
    },
    {
      title: 'addressFormat full: other controls of the name removed',
      input: {
        mapping: { addressFormat: 'full' },
        message: {
          from: addr('jane@example.com', 'Ja\u0000ne\u0007 \u009bDoe'),
        },
      },
      expected: 'Jane Doe <jane@example.com>',
    },
    {
      title: 'controls in the address: CR/LF a space, others removed',
      input: {
        message: { from: addr('ja\u0000ne@example.com\r\nBcc: x@example.net') },
      },
      expected: 'jane@example.com Bcc: x@example.net',
    },
    {
      title:
        'an address made only of controls is no address: the envelope sender',
      input: { message: { from: addr('\r\n\u0000', 'Jane') } },
      expected: 'bounce@example.com',
    },
    {
      title: 'controls in the envelope sender removed',
      input: {
        message: { from: undefined },
        envelope: { mailFrom: 'bounce\u0001@example.com' },
      },
      expected: 'bounce@example.com',
    },
  ]);

  fieldTable('to', [
    {
      title: 'one address',
      input: {},
      expected: 'support@example.com',
    },
    {
      title: 'several addresses joined with ", "',
      input: {
        message: {
          to: [addr('a@example.com', 'A'), addr('b@example.com')],
        },
      },
      expected: 'a@example.com, b@example.com',
    },
    {
      title: 'addressFormat full on every address',
      input: {
        mapping: { addressFormat: 'full' },
        message: {
          to: [addr('a@example.com', 'Ann'), addr('b@example.com', 'B, Bob')],
        },
      },
      expected: 'Ann <a@example.com>, "B, Bob" <b@example.com>',
    },
    {
      title: 'left out when there is no To',
      input: { message: { to: [] } },
      expected: undefined,
    },
    {
      title: 'entries with an empty address are skipped',
      input: {
        message: {
          to: [addr('', 'undisclosed-recipients'), addr('a@example.com')],
        },
      },
      expected: 'a@example.com',
    },
    {
      title: 'left out when every entry is empty',
      input: { message: { to: [addr('', 'undisclosed-recipients')] } },
      expected: undefined,
    },
    {
      title:
        'addressFormat full: CR/LF in a name become a space, controls removed',
      input: {
        mapping: { addressFormat: 'full' },
        message: {
          to: [
            addr('a@example.com', 'Ann\r\nCc: x'),
            addr('b@exa\u0000mple.com'),
          ],
        },
      },
      expected: '"Ann Cc: x" <a@example.com>, b@example.com',
    },
  ]);

  fieldTable('cc', [
    {
      title: 'left out when there is no Cc',
      input: {},
      expected: undefined,
    },
    {
      title: 'several addresses joined with ", "',
      input: {
        message: { cc: [addr('c@example.com'), addr('d@example.com', 'D')] },
      },
      expected: 'c@example.com, d@example.com',
    },
    {
      title: 'addressFormat full',
      input: {
        mapping: { addressFormat: 'full' },
        message: { cc: [addr('c@example.com', 'Cee')] },
      },
      expected: 'Cee <c@example.com>',
    },
    {
      title:
        'addressFormat full: CR/LF in a name become a space, controls removed',
      input: {
        mapping: { addressFormat: 'full' },
        message: { cc: [addr('c@example.com\u007f', 'C\u0085ee\u0000')] },
      },
      expected: 'C ee <c@example.com>',
    },
  ]);

  fieldTable('bcc', [
    {
      title: 'left out when every route recipient is in To',
      input: {},
      expected: undefined,
    },
    {
      title: 'a route recipient in neither To nor Cc',
      input: {
        envelope: { rcptTo: ['support@example.com', 'hidden@example.com'] },
      },
      expected: 'hidden@example.com',
    },
    {
      title: 'several hidden recipients joined with ", ", in envelope order',
      input: {
        envelope: {
          rcptTo: ['z@example.com', 'support@example.com', 'a@example.com'],
        },
      },
      expected: 'z@example.com, a@example.com',
    },
    {
      title: 'a recipient in To, compared case-insensitively',
      input: {
        message: { to: [addr('Support@Example.COM')] },
        envelope: { rcptTo: ['SUPPORT@example.com'] },
      },
      expected: undefined,
    },
    {
      title: 'a recipient in Cc is not bcc',
      input: {
        message: { cc: [addr('Team@example.com')] },
        envelope: { rcptTo: ['support@example.com', 'team@EXAMPLE.com'] },
      },
      expected: undefined,
    },
    {
      title: "only this route's recipients, not the whole envelope",
      input: {
        envelope: { rcptTo: ['support@example.com', 'other@example.net'] },
        group: { recipients: ['support@example.com', 'hidden@example.com'] },
      },
      expected: 'hidden@example.com',
    },
    {
      title: 'the recipient as the envelope wrote it',
      input: { envelope: { rcptTo: ['Hidden+T1@Example.com'] } },
      expected: 'Hidden+T1@Example.com',
    },
    {
      title: 'controls in a recipient removed',
      input: {
        envelope: {
          rcptTo: ['support@example.com', 'hid\u0000den@example.com'],
        },
      },
      expected: 'hidden@example.com',
    },
  ]);

  fieldTable('subject', [
    { title: 'the decoded subject', input: {}, expected: 'Printer on fire' },
    {
      title: '998 characters: whole',
      input: { message: { subject: 'x'.repeat(998) } },
      expected: 'x'.repeat(998),
    },
    {
      title: 'longer: cut to 998 characters, the last an ellipsis',
      input: { message: { subject: 'y'.repeat(130_000) } },
      expected: `${'y'.repeat(997)}…`,
    },
    {
      title: 'cut between characters, not inside one (astral ones count once)',
      input: { message: { subject: '😀'.repeat(1000) } },
      expected: `${'😀'.repeat(997)}…`,
    },
    {
      title: 'non-ASCII kept as is',
      input: { message: { subject: 'Grüße – 件名' } },
      expected: 'Grüße – 件名',
    },
    {
      title: 'left out when missing',
      input: { message: { subject: undefined } },
      expected: undefined,
    },
    {
      title: 'left out when empty',
      input: { message: { subject: '' } },
      expected: undefined,
    },
    {
      title: 'left out when only whitespace',
      input: { message: { subject: ' \t ' } },
      expected: undefined,
    },
    {
      // an encoded word `=?utf-8?q?Hello=0D=0ABcc:...?=` decodes to a line break
      title: 'CR/LF become a space (header injection, regression)',
      input: { message: { subject: 'Hello\r\nBcc: victim@example.net' } },
      expected: 'Hello Bcc: victim@example.net',
    },
    {
      title: 'a run of CR, LF, TAB, VT, FF and NEL becomes one space',
      input: { message: { subject: 'a\r\n\tb\u000b\u000c\u0085c' } },
      expected: 'a b c',
    },
    {
      title: 'other C0 controls, DEL and C1 controls removed',
      input: {
        message: { subject: 'a\u0000b\u0008c\u007fd\u0080e\u009bf\u001b' },
      },
      expected: 'abcdef',
    },
    {
      title: 'left out when only control characters',
      input: { message: { subject: '\r\n\u0000\u0007' } },
      expected: undefined,
    },
  ]);

  const HTML = '<p onclick="x()">Hello <b>world</b></p><script>bad()</script>';
  const SAFE = '<p>Hello <b>world</b></p>';
  fieldTable('content', [
    {
      title: 'auto, text and HTML: the sanitized HTML',
      input: { message: { text: 'Hello world', html: HTML } },
      expected: SAFE,
    },
    {
      // content is one format, safe to render as HTML (contract): a text part is escaped
      title: 'auto, text only: the text escaped and laid out as HTML',
      input: { message: { text: 'a < b & c\nline 2' } },
      expected: '<div>a &lt; b &amp; c<br>\nline 2</div>',
    },
    {
      title:
        'auto, a text part that looks like markup is never posted as markup (regression)',
      input: { message: { text: '<img src=x onerror=alert(1)>' } },
      expected: '<div>&lt;img src=x onerror=alert(1)&gt;</div>',
    },
    {
      title: 'auto, HTML only whitespace: the text as HTML',
      input: { message: { text: 'plain', html: ' \n ' } },
      expected: '<div>plain</div>',
    },
    {
      title:
        'auto, HTML that sanitizes to nothing: the text as HTML, escaped (regression)',
      input: {
        message: {
          text: '<svg onload=alert(1)>',
          html: '<script>x()</script>',
        },
      },
      expected: '<div>&lt;svg onload=alert(1)&gt;</div>',
    },
    // HTML over mapping.maxHtmlBytes is never parsed as HTML (issue 16, defect 2)
    {
      title: 'HTML over maxHtmlBytes: the text part, escaped, and a note',
      input: {
        message: {
          text: 'the <text>',
          html: `<div>${'<div>'.repeat(500)}x</div>`,
        },
        mapping: { maxHtmlBytes: 1024 },
      },
      expected:
        '<div>the &lt;text&gt;</div><div>[mailbridge: the HTML part (2512 characters) is over mapping.maxHtmlBytes (1024); its text part is shown]</div>',
    },
    {
      title:
        'HTML over maxHtmlBytes without a text part: its text without the markup, cut there',
      input: {
        message: {
          text: undefined,
          html: `<p>Hello <b>you</b></p>${'<i>y</i>'.repeat(300)}`,
        },
        mapping: { maxHtmlBytes: 1024 },
      },
      expected: `<div>Hello you${' y'.repeat(125)}</div><div>[mailbridge: the HTML part (2423 characters) is over mapping.maxHtmlBytes (1024); its text, without the markup, is shown]</div>`,
    },
    {
      title: 'text, HTML over maxHtmlBytes: plain text and the note',
      input: {
        message: { text: 'plain', html: 'x'.repeat(2000) },
        mapping: { content: 'text', maxHtmlBytes: 1024 },
      },
      expected:
        'plain\n\n[mailbridge: the HTML part (2000 characters) is over mapping.maxHtmlBytes (1024); its text part is shown]',
    },
    {
      title: 'html, HTML that sanitizes to nothing: the text as HTML',
      input: {
        message: { text: 'hi', html: '<style>p{}</style>' },
        mapping: { content: 'html' },
      },
      expected: '<div>hi</div>',
    },
    {
      title: 'auto, no body and no attachment: a note says so',
      input: { message: { text: undefined, html: undefined } },
      expected: NO_BODY_HTML,
    },
    {
      title: 'auto, text only whitespace, no attachment: the note',
      input: { message: { text: '\n\n ' } },
      expected: NO_BODY_HTML,
    },
    {
      title:
        'auto, no body but an attachment: left out (the file is the message)',
      input: { message: { text: undefined, attachments: [ATTACHMENT] } },
      expected: undefined,
    },
    {
      title: 'auto with sanitizeHtml false: the HTML untouched',
      input: {
        message: { html: HTML },
        mapping: { sanitizeHtml: false },
      },
      expected: HTML,
    },
    {
      title:
        'remoteImages block: a remote image becomes a link with its alt text, a dangling cid: is named',
      input: {
        message: {
          html: '<p><img src="https://t.example/p.gif" alt="Logo"><img src="cid:a@b"></p>',
        },
      },
      expected:
        '<p><a href="https://t.example/p.gif" rel="noopener noreferrer">[image: Logo]</a>[image]</p>',
    },
    {
      title: 'remoteImages keep: a remote image stays an image',
      input: {
        message: {
          html: '<p><img src="https://t.example/p.gif" alt="Logo"></p>',
        },
        mapping: { remoteImages: 'keep' },
      },
      expected: '<p><img src="https://t.example/p.gif" alt="Logo" /></p>',
    },
    {
      title: 'remoteImages block with sanitizeHtml false: the HTML untouched',
      input: {
        message: { html: '<img src="https://t.example/p.gif">' },
        mapping: { sanitizeHtml: false },
      },
      expected: '<img src="https://t.example/p.gif">',
    },
    {
      title: 'html, with HTML: the sanitized HTML',
      input: { message: { html: HTML }, mapping: { content: 'html' } },
      expected: SAFE,
    },
    {
      title: 'html, text only: the text escaped into HTML',
      input: {
        message: { text: 'a < b & "c"\r\nline 2' },
        mapping: { content: 'html' },
      },
      expected: '<div>a &lt; b &amp; &quot;c&quot;<br>\nline 2</div>',
    },
    {
      title: 'html, no body: the note',
      input: {
        message: { text: undefined },
        mapping: { content: 'html' },
      },
      expected: NO_BODY_HTML,
    },
    {
      title: 'text, text and HTML: the text',
      input: {
        message: { text: 'the text', html: HTML },
        mapping: { content: 'text' },
      },
      expected: 'the text',
    },
    {
      title: 'text, HTML only: the text of the HTML',
      input: {
        message: {
          text: undefined,
          html: '<p>Fish &amp; chips</p><p>2 &lt; 3</p>',
        },
        mapping: { content: 'text' },
      },
      expected: 'Fish & chips\n\n2 < 3',
    },
    {
      title: 'text, no body: the note as text',
      input: {
        message: { text: undefined },
        mapping: { content: 'text' },
      },
      expected: NO_BODY_NOTE,
    },
    {
      title: 'text, no body but an attachment: left out',
      input: {
        message: { text: undefined, attachments: [ATTACHMENT] },
        mapping: { content: 'text' },
      },
      expected: undefined,
    },
  ]);

  fieldTable('attachments', [
    {
      title: 'left out when there are none',
      input: {},
      expected: undefined,
    },
    {
      // the file is base64-encoded when the body is sent: test/unit/payload-stream.test.ts
      title: 'every attachment as {name, file} with a reference to its bytes',
      input: {
        message: {
          attachments: [
            {
              filename: 'report.pdf',
              contentType: 'application/pdf',
              path: '/spool/tmp/att-1.bin',
              size: 8,
            },
            {
              filename: 'attachment-2.bin',
              contentType: 'application/octet-stream',
              path: '/spool/tmp/att-2.bin',
              size: 5,
            },
            {
              filename: 'résumé été.txt',
              contentType: 'text/plain',
              path: '/spool/tmp/att-3.bin',
              size: 0,
            },
          ],
        },
      },
      expected: [
        { name: 'report.pdf', file: { path: '/spool/tmp/att-1.bin', size: 8 } },
        {
          name: 'attachment-2.bin',
          file: { path: '/spool/tmp/att-2.bin', size: 5 },
        },
        {
          name: 'résumé été.txt',
          file: { path: '/spool/tmp/att-3.bin', size: 0 },
        },
      ],
    },
    {
      title: 'controls in a name: CR/LF a space, others removed',
      input: {
        message: {
          attachments: [
            {
              filename: 're\u0007port\r\nfinal.pdf\u0085',
              contentType: 'application/pdf',
              path: '/spool/tmp/att-1.bin',
              size: 8,
            },
          ],
        },
      },
      expected: [
        {
          name: 'report final.pdf ',
          file: { path: '/spool/tmp/att-1.bin', size: 8 },
        },
      ],
    },
  ]);

  const GENERATED = `<${DIGEST.slice(0, 40)}@mailbridge.generated>`;
  fieldTable('ext_msg_id', [
    {
      title: 'the Message-ID with its brackets',
      input: {},
      expected: '<m1@example.com>',
    },
    {
      title: 'brackets added when missing',
      input: { message: { messageId: 'm1@example.com' } },
      expected: '<m1@example.com>',
    },
    {
      title: 'one pair of brackets when doubled',
      input: { message: { messageId: '<<m1@example.com>>' } },
      expected: '<m1@example.com>',
    },
    {
      title: 'surrounding whitespace and folding removed',
      input: { message: { messageId: ' <m1@exam\r\n ple.com>\t' } },
      expected: '<m1@example.com>',
    },
    {
      title: 'a trailing comment ignored',
      input: { message: { messageId: '<m1@example.com> (added by relay)' } },
      expected: '<m1@example.com>',
    },
    {
      title: 'generated from the digest when missing',
      input: { message: { messageId: undefined } },
      expected: GENERATED,
    },
    {
      title: 'generated when the header is empty brackets',
      input: { message: { messageId: '<>' } },
      expected: GENERATED,
    },
    {
      title: 'generated when the header is blank',
      input: { message: { messageId: '  ' } },
      expected: GENERATED,
    },
    {
      title: 'controls in the id removed',
      input: { message: { messageId: '<m1\u0000@exam\u0085ple.com\u009b>' } },
      expected: '<m1@example.com>',
    },
    {
      title: 'generated when the id is only controls',
      input: { message: { messageId: '<\u0001\u007f>' } },
      expected: GENERATED,
    },
    {
      title: 'messageIdBrackets false: bare id',
      input: { mapping: { messageIdBrackets: false } },
      expected: 'm1@example.com',
    },
    {
      title: 'messageIdBrackets false: bare generated id',
      input: {
        message: { messageId: undefined },
        mapping: { messageIdBrackets: false },
      },
      expected: `${DIGEST.slice(0, 40)}@mailbridge.generated`,
    },
  ]);

  describe('ext_msg_id generated', () => {
    it('is stable for the same digest and differs for another', () => {
      const first = map({ message: { messageId: undefined } }).ext_msg_id;
      const again = map({ message: { messageId: undefined } }).ext_msg_id;
      const other = map({
        message: { messageId: undefined, digest: 'f'.repeat(64) },
      }).ext_msg_id;
      expect(first).to.equal(again).and.to.equal(generatedId(DIGEST));
      expect(other).to.equal(`<${'f'.repeat(40)}@mailbridge.generated>`);
    });
  });

  fieldTable('reply_to_ext_msg_id', [
    {
      title: 'absent for a new thread',
      input: {},
      expected: undefined,
    },
    {
      title: 'the In-Reply-To id',
      input: { message: { inReplyTo: '<p1@example.com>' } },
      expected: '<p1@example.com>',
    },
    {
      title: 'the first In-Reply-To id when there are several',
      input: {
        message: { inReplyTo: '<p1@example.com> <p2@example.com>' },
      },
      expected: '<p1@example.com>',
    },
    {
      title: 'In-Reply-To normalised like ext_msg_id',
      input: { message: { inReplyTo: ' p1@example.com ' } },
      expected: '<p1@example.com>',
    },
    {
      title: 'the LAST References id without In-Reply-To',
      input: {
        message: {
          references: ['<r1@example.com>', '<r2@example.com>', '<r3@x>'],
        },
      },
      expected: '<r3@x>',
    },
    {
      title: 'In-Reply-To wins over References',
      input: {
        message: {
          inReplyTo: '<p1@example.com>',
          references: ['<r1@example.com>', '<r2@example.com>'],
        },
      },
      expected: '<p1@example.com>',
    },
    {
      title: 'References when In-Reply-To is empty brackets',
      input: {
        message: { inReplyTo: '<>', references: ['<r1@example.com>'] },
      },
      expected: '<r1@example.com>',
    },
    {
      title: 'the last References id, not a trailing comment',
      input: {
        message: { references: ['<r1@example.com>', '(resent)'] },
      },
      expected: '<r1@example.com>',
    },
    {
      title: 'the last References id, not comment words mailparser bracketed',
      input: {
        message: {
          references: ['<r1@example.com>', '<(resent>', '<by>', '<relay)>'],
        },
      },
      expected: '<r1@example.com>',
    },
    {
      title: 'the last id of one References string holding several',
      input: {
        message: { references: ['<r1@example.com>\r\n <r2@example.com>'] },
      },
      expected: '<r2@example.com>',
    },
    {
      title: 'controls in the In-Reply-To id removed',
      input: { message: { inReplyTo: '<p1\u0000@example.com\u0085>' } },
      expected: '<p1@example.com>',
    },
    {
      title: 'controls in a References id removed',
      input: {
        message: { references: ['<r1@example.com>', '<r2\u009b@example.com>'] },
      },
      expected: '<r2@example.com>',
    },
    {
      title: 'messageIdBrackets false: bare id',
      input: {
        message: { inReplyTo: '<p1@example.com>' },
        mapping: { messageIdBrackets: false },
      },
      expected: 'p1@example.com',
    },
  ]);

  fieldTable('mailbox_id', [
    {
      title: 'from the route',
      input: { route: { mailbox_id: 'mb-support' } },
      expected: 'mb-support',
    },
    {
      title: 'left out when the route has none',
      input: {},
      expected: undefined,
    },
  ]);

  fieldTable('thread_id', [
    {
      title: 'from the route group',
      input: { group: { threadId: 'T123' } },
      expected: 'T123',
    },
    {
      title: 'left out when the group has none',
      input: {},
      expected: undefined,
    },
    {
      title: 'controls in the thread id removed',
      input: { group: { threadId: 'T1\u0000\u009b23' } },
      expected: 'T123',
    },
  ]);

  fieldTable('priority', [
    {
      title: 'high -> mapping.priority.high',
      input: { message: { priority: 'high' } },
      expected: 1,
    },
    {
      title: 'low -> mapping.priority.low',
      input: { message: { priority: 'low' } },
      expected: 5,
    },
    {
      title: 'normal (null) is left out',
      input: { message: { priority: 'normal' } },
      expected: undefined,
    },
    {
      title: 'a null mapping leaves high out',
      input: {
        message: { priority: 'high' },
        mapping: { priority: { high: null, normal: null, low: 5 } },
      },
      expected: undefined,
    },
    {
      title: 'a mapped normal is posted',
      input: { mapping: { priority: { high: 1, normal: 3, low: 5 } } },
      expected: 3,
    },
    {
      title: 'zero is a value, not empty',
      input: {
        message: { priority: 'low' },
        mapping: { priority: { high: 1, normal: null, low: 0 } },
      },
      expected: 0,
    },
    {
      title: 'a route field priority stays when the mapping gives none',
      input: { route: { fields: { priority: 2 } } },
      expected: 2,
    },
    {
      title: 'the mapped priority wins over a route field priority',
      input: {
        message: { priority: 'high' },
        route: { fields: { priority: 2 } },
      },
      expected: 1,
    },
  ]);

  describe('fields', () => {
    const rows: Array<{
      title: string;
      fields: Record<string, unknown>;
      expected: Record<string, unknown>;
    }> = [
      {
        title: 'static fields merged into the body, false and 0 kept',
        fields: {
          read: false,
          set_reminder: { delay: 86400, number_left: 3 },
          spam_score: 0,
        },
        expected: {
          read: false,
          set_reminder: { delay: 86400, number_left: 3 },
          spam_score: 0,
        },
      },
      {
        title: 'empty strings and null left out',
        fields: { note: '', tag: null, kept: 'yes' },
        expected: { kept: 'yes' },
      },
    ];
    for (const row of rows) {
      it(row.title, () => {
        const body = map({ route: { fields: row.fields } });
        for (const key of Object.keys(row.fields)) {
          if (key in row.expected) {
            expect(body[key]).to.deep.equal(row.expected[key]);
          } else {
            expect(body).to.not.have.property(key);
          }
        }
      });
    }
  });

  describe('whole body', () => {
    it('a complete message maps onto every field', () => {
      const body = map({
        message: {
          from: addr('jane@example.com', 'Jane Doe'),
          to: [addr('support@example.com', 'Support')],
          cc: [addr('boss@example.com')],
          subject: 'Re: Printer',
          text: 'text',
          html: '<p>html</p>',
          messageId: '<m2@example.com>',
          inReplyTo: '<m1@example.com>',
          references: ['<m0@example.com>', '<m1@example.com>'],
          priority: 'high',
          attachments: [
            {
              filename: 'a.txt',
              contentType: 'text/plain',
              path: '/spool/tmp/att-1.bin',
              size: 3,
            },
          ],
        },
        envelope: {
          rcptTo: ['support+T9@example.com', 'audit@example.com'],
        },
        group: {
          recipients: ['support+T9@example.com', 'audit@example.com'],
          threadId: 'T9',
        },
        route: {
          match: 'support@example.com',
          mailbox_id: 'mb-support',
          thread_from_subaddress: true,
          fields: { read: false },
        },
      });
      expect(body).to.deep.equal({
        read: false,
        from: 'jane@example.com',
        to: 'support@example.com',
        cc: 'boss@example.com',
        bcc: 'support+T9@example.com, audit@example.com',
        subject: 'Re: Printer',
        content: '<p>html</p>',
        attachments: [
          { name: 'a.txt', file: { path: '/spool/tmp/att-1.bin', size: 3 } },
        ],
        ext_msg_id: '<m2@example.com>',
        reply_to_ext_msg_id: '<m1@example.com>',
        mailbox_id: 'mb-support',
        thread_id: 'T9',
        priority: 1,
      });
    });

    it('an empty message leaves out every empty value; its content says it is empty', () => {
      const body = map({
        message: {
          from: undefined,
          to: [],
          cc: [],
          subject: '',
          text: '',
          html: '',
          messageId: undefined,
          inReplyTo: '',
          references: [],
        },
        envelope: { mailFrom: null, rcptTo: [] },
      });
      expect(body).to.deep.equal({
        ext_msg_id: GENERATED,
        content: NO_BODY_HTML,
      });
    });

    it('no header-derived value carries a control character (regression)', () => {
      const hostile = (text: string) => `${text}\r\n\u0000\u0085\u009b\u007fX`;
      const body = map({
        mapping: { addressFormat: 'full' },
        message: {
          from: addr(hostile('jane@example.com'), hostile('Jane')),
          to: [addr(hostile('support@example.com'), hostile('Support'))],
          cc: [addr(hostile('boss@example.com'), hostile('Boss'))],
          subject: hostile('Subject'),
          messageId: hostile('<m2@example.com>'),
          inReplyTo: hostile('<m1@example.com>'),
          attachments: [
            {
              filename: hostile('a.txt'),
              contentType: 'text/plain',
              path: '/spool/tmp/att-1.bin',
              size: 3,
            },
          ],
        },
        envelope: { rcptTo: [hostile('audit@example.com')] },
        group: { threadId: hostile('T9') },
      });
      const { content, ...headerDerived } = body;
      expect(content).to.be.a('string');
      const values = Object.values(headerDerived).flatMap(value =>
        Array.isArray(value)
          ? value.map((a: { name: string }) => a.name)
          : [String(value)],
      );
      for (const value of values) {
        // eslint-disable-next-line no-control-regex -- what must not be there
        expect(value).to.not.match(/[\u0000-\u001f\u007f-\u009f]/);
      }
      expect(Object.keys(headerDerived)).to.include.members([
        'from',
        'to',
        'cc',
        'bcc',
        'subject',
        'attachments',
        'ext_msg_id',
        'reply_to_ext_msg_id',
        'thread_id',
      ]);
    });

    it('never carries an empty string, null or undefined value', () => {
      const body = map({
        message: { cc: [], subject: ' ', inReplyTo: undefined },
      });
      for (const [key, value] of Object.entries(body)) {
        expect(value, key).to.not.be.oneOf(['', null, undefined]);
      }
      expect(Object.keys(body)).to.have.members([
        'from',
        'to',
        'content',
        'ext_msg_id',
      ]);
    });
  });
});
