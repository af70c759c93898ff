// The "body posted" table of the contract, row by row: real SMTP in, the JSON the API received out.
import { expect } from 'chai';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

type Body = Record<string, unknown>;

/** Every string value anywhere in a JSON value, with its path. */
function stringsIn(value: unknown, path = '$'): Array<[string, string]> {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => stringsIn(v, `${path}[${i}]`));
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) =>
      stringsIn(v, `${path}.${k}`),
    );
  }
  return [];
}

/** Base64 as a MIME body writes it: lines of 76 characters. */
function mimeBase64(bytes: Buffer): string {
  return (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

describe('body posted: one test per row of the contract table', () => {
  const t = useBridge();

  /** A fresh daemon posting to the stand-in API, closed after the test. */
  async function bridgeWith(overrides: Body = {}): Promise<TestBridge> {
    // sync mode: the body is posted before the 250, so each test reads it right away
    return t.start({
      api: apiAt(t.api.url),
      delivery: { mode: 'sync' },
      ...overrides,
    });
  }

  /** Sends one message, expects 250 and returns the one body it posted. */
  async function post(
    bridge: TestBridge,
    raw: string,
    options: { to?: string[]; from?: string } = {},
  ): Promise<Body> {
    const before = t.api.requests.length;
    const result = await sendRaw({
      port: bridge.smtpPort,
      to: options.to ?? ['support@example.com'],
      from: options.from,
      raw,
    });
    expect(result.code, result.response).to.equal(250);
    const requests = await t.api.waitForRequests(before + 1);
    expect(requests).to.have.length(before + 1);
    return requests[before]!.body;
  }

  it('from: the From address, else the envelope sender', async () => {
    // a route that delivers auto-replies: by default a null sender's message is held
    const bridge = await bridgeWith({
      routes: [{ match: '*', autoReplies: 'deliver' }],
    });
    const withFrom = await post(
      bridge,
      makeMessage({
        From: '"Doe, Jane" <Jane.Doe@example.com>',
        To: 'support@example.com',
        Subject: 'with From',
      }),
      { from: 'bounces@example.net' },
    );
    expect(withFrom.from).to.equal('Jane.Doe@example.com');

    const withoutFrom = await post(
      bridge,
      makeMessage({ To: 'support@example.com', Subject: 'no From' }),
      { from: 'bounces@example.net' },
    );
    expect(withoutFrom.from).to.equal('bounces@example.net');

    // a From with no address (an empty group) counts as no From
    const groupFrom = await post(
      bridge,
      makeMessage({ From: 'undisclosed-recipients:;', Subject: 'group' }),
      { from: 'bounces@example.net' },
    );
    expect(groupFrom.from).to.equal('bounces@example.net');

    // no From and the null sender <>: no from at all, never ""
    const nullSender = await post(
      bridge,
      makeMessage({ To: 'support@example.com', Subject: 'bounce' }),
      { from: '' },
    );
    expect(nullSender).not.to.have.property('from');
  });

  it('to, cc: the header addresses joined with ", "', async () => {
    const bridge = await bridgeWith();
    const body = await post(
      bridge,
      makeMessage({
        From: 'jane@example.com',
        To: 'Support <support@example.com>, bob@example.com',
        Cc: '=?UTF-8?Q?Carol_B=C3=A9?= <carol@example.org>, dave@example.org',
        Subject: 'addresses',
      }),
    );
    expect(body.to).to.equal('support@example.com, bob@example.com');
    expect(body.cc).to.equal('carol@example.org, dave@example.org');
    expect(body).not.to.have.property('bcc');
  });

  it('bcc: envelope recipients of the route in neither To nor Cc', async () => {
    const bridge = await bridgeWith();
    const body = await post(
      bridge,
      makeMessage({
        From: 'jane@example.com',
        To: 'support@example.com',
        Cc: 'sales@example.com',
        Subject: 'bcc',
      }),
      {
        to: [
          'support@example.com',
          'SALES@example.com',
          'hidden@example.com',
          'audit@example.org',
        ],
      },
    );
    expect(body.to).to.equal('support@example.com');
    expect(body.cc).to.equal('sales@example.com');
    expect(body.bcc).to.equal('hidden@example.com, audit@example.org');
  });

  it('subject: RFC 2047 encoded words decoded', async () => {
    const bridge = await bridgeWith();
    const body = await post(
      bridge,
      makeMessage({
        From: 'jane@example.com',
        To: 'support@example.com',
        Subject: `Re: =?UTF-8?B?${Buffer.from('Grüße 日本').toString('base64')}?= and =?ISO-8859-1?Q?caf=E9?=`,
      }),
    );
    expect(body.subject).to.equal('Re: Grüße 日本 and café');
  });

  it('content: sanitized HTML, else text; mapping.content text and html', async () => {
    const alternative = makeMessage(
      {
        From: 'jane@example.com',
        To: 'support@example.com',
        Subject: 'html',
        'MIME-Version': '1.0',
        'Content-Type': 'multipart/alternative; boundary="alt"',
      },
      [
        '--alt',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Plain version',
        '--alt',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p onclick="steal()">Rich <b>version</b></p><script>alert(1)</script>',
        '<a href="javascript:alert(2)">link</a>',
        '--alt--',
        '',
      ].join('\r\n'),
    );
    const textOnly = makeMessage(
      { From: 'jane@example.com', To: 'support@example.com', Subject: 'txt' },
      'Fish & <chips>\r\nline two\r\n',
    );

    const auto = await bridgeWith();
    const html = await post(auto, alternative);
    expect(html.content).to.be.a('string');
    expect(html.content).to.include('<p>Rich <b>version</b></p>');
    expect(html.content).not.to.match(/<script|alert\(1\)|onclick|javascript:/);
    const text = await post(auto, textOnly);
    // a text part, escaped and laid out as HTML: content is one format (contract)
    expect(text.content).to.equal(
      '<div>Fish &amp; &lt;chips&gt;<br>\nline two<br>\n</div>',
    );

    const asText = await bridgeWith({ mapping: { content: 'text' } });
    expect((await post(asText, alternative)).content).to.equal('Plain version');

    const asHtml = await bridgeWith({ mapping: { content: 'html' } });
    expect((await post(asHtml, textOnly)).content).to.equal(
      '<div>Fish &amp; &lt;chips&gt;<br>\nline two<br>\n</div>',
    );
    const htmlKept = (await post(asHtml, alternative)).content;
    expect(htmlKept).to.include('<b>version</b>');
    expect(htmlKept).not.to.include('<script');
  });

  it('attachments: decoded names (RFC 2047, RFC 2231), base64 of decoded bytes, generated names', async () => {
    const binary = Buffer.from(
      Array.from({ length: 300 }, (_, i) => (i * 37) % 256),
    );
    const pdf = Buffer.from('%PDF-1.4\n% fake\n');
    const bridge = await bridgeWith();
    const body = await post(
      bridge,
      makeMessage(
        {
          From: 'jane@example.com',
          To: 'support@example.com',
          Subject: 'files',
          'MIME-Version': '1.0',
          'Content-Type': 'multipart/mixed; boundary="mix"',
        },
        [
          '--mix',
          'Content-Type: text/plain; charset=utf-8',
          '',
          'See attached.',
          '--mix',
          'Content-Type: application/octet-stream',
          'Content-Disposition: attachment; filename="=?UTF-8?Q?r=C3=A9sum=C3=A9.bin?="',
          'Content-Transfer-Encoding: base64',
          '',
          mimeBase64(binary),
          '--mix',
          'Content-Type: text/plain; charset=utf-8',
          "Content-Disposition: attachment; filename*=UTF-8''na%C3%AFve%20plan.txt",
          'Content-Transfer-Encoding: quoted-printable',
          '',
          'caf=C3=A9',
          '--mix',
          'Content-Type: application/pdf',
          'Content-Disposition: attachment',
          'Content-Transfer-Encoding: base64',
          '',
          mimeBase64(pdf),
          '--mix--',
          '',
        ].join('\r\n'),
      ),
    );
    expect(body.content).to.equal('<div>See attached.</div>');
    expect(body.attachments).to.deep.equal([
      { name: 'résumé.bin', file: binary.toString('base64') },
      { name: 'naïve plan.txt', file: Buffer.from('café').toString('base64') },
      { name: 'attachment-3.pdf', file: pdf.toString('base64') },
    ]);
  });

  it('ext_msg_id: the Message-ID with brackets; a stable generated one when missing', async () => {
    // no dedupe records: the same message is posted again, to compare its generated id
    const bridge = await bridgeWith({
      delivery: { mode: 'sync', dedupeWindowMs: 0 },
    });
    const given = await post(
      bridge,
      makeMessage({
        From: 'jane@example.com',
        To: 'support@example.com',
        'Message-ID': '<Abc.123$x@mail.example.com>',
      }),
    );
    expect(given.ext_msg_id).to.equal('<Abc.123$x@mail.example.com>');

    const noId = makeMessage({
      From: 'jane@example.com',
      To: 'support@example.com',
      Subject: 'no id',
    });
    const first = await post(bridge, noId);
    const second = await post(bridge, noId);
    const other = await post(bridge, noId.replace('no id', 'no id 2'));
    expect(first.ext_msg_id)
      .to.be.a('string')
      .and.match(/^<[^<>\s]+@[^<>\s]+>$/);
    expect(second.ext_msg_id).to.equal(first.ext_msg_id);
    expect(other.ext_msg_id).to.be.a('string').and.not.equal(first.ext_msg_id);
  });

  it('reply_to_ext_msg_id: In-Reply-To, else the last References id, absent for a new thread', async () => {
    const bridge = await bridgeWith();
    const headers = { From: 'jane@example.com', To: 'support@example.com' };
    const inReplyTo = await post(
      bridge,
      makeMessage({
        ...headers,
        'Message-ID': '<r1@example.com>',
        'In-Reply-To': '<parent@example.com>',
        References: '<root@example.com> <parent@example.com>',
      }),
    );
    expect(inReplyTo.reply_to_ext_msg_id).to.equal('<parent@example.com>');

    const referencesOnly = await post(
      bridge,
      makeMessage({
        ...headers,
        'Message-ID': '<r2@example.com>',
        References:
          '<root@example.com>\r\n <middle@example.com>\r\n <last@example.com>',
      }),
    );
    expect(referencesOnly.reply_to_ext_msg_id).to.equal('<last@example.com>');

    // mailparser turns a trailing comment into an id "<(resent)>": not one for us
    const withComment = await post(
      bridge,
      makeMessage({
        ...headers,
        'Message-ID': '<r4@example.com>',
        References: '<root@example.com> <last@example.com> (resent)',
      }),
    );
    expect(withComment.reply_to_ext_msg_id).to.equal('<last@example.com>');

    const newThread = await post(
      bridge,
      makeMessage({ ...headers, 'Message-ID': '<r3@example.com>' }),
    );
    expect(newThread).not.to.have.property('reply_to_ext_msg_id');
  });

  it('mailbox_id, thread_id, fields: from the route', async () => {
    const bridge = await bridgeWith({
      routes: [
        {
          match: 'support@example.com',
          mailbox_id: 'mb-support',
          thread_from_subaddress: true,
          fields: {
            read: false,
            set_reminder: { delay: 86400, number_left: 3 },
          },
        },
      ],
    });
    const body = await post(
      bridge,
      makeMessage({
        From: 'jane@example.com',
        To: 'support+T42@example.com',
        'Message-ID': '<route@example.com>',
      }),
      { to: ['support+T42@example.com'] },
    );
    expect(body).to.deep.equal({
      from: 'jane@example.com',
      to: 'support+T42@example.com',
      content: '<div>Hello.<br>\n</div>',
      ext_msg_id: '<route@example.com>',
      mailbox_id: 'mb-support',
      thread_id: 'T42',
      read: false,
      set_reminder: { delay: 86400, number_left: 3 },
    });
  });

  it('priority: X-Priority 1 -> 1, Importance low -> 5, normal -> absent', async () => {
    const bridge = await bridgeWith();
    const headers = { From: 'jane@example.com', To: 'support@example.com' };
    const high = await post(
      bridge,
      makeMessage({ ...headers, 'X-Priority': '1 (Highest)' }),
    );
    expect(high.priority).to.equal(1);
    const low = await post(
      bridge,
      makeMessage({ ...headers, Importance: 'low' }),
    );
    expect(low.priority).to.equal(5);
    const normal = await post(
      bridge,
      makeMessage({ ...headers, 'X-Priority': '3 (Normal)' }),
    );
    expect(normal).not.to.have.property('priority');
    const none = await post(bridge, makeMessage(headers));
    expect(none).not.to.have.property('priority');
  });

  it('empty values are left out: no "" anywhere in the body', async () => {
    const bridge = await bridgeWith({
      routes: [{ match: '*', fields: { note: '', read: false } }],
    });
    const body = await post(
      bridge,
      makeMessage(
        {
          From: 'jane@example.com',
          To: 'support@example.com',
          Subject: '',
          Cc: '',
        },
        '',
      ),
    );
    expect(stringsIn(body).filter(([, v]) => v.trim() === '')).to.deep.equal(
      [],
    );
    for (const key of ['subject', 'cc', 'bcc', 'note', 'mailbox_id']) {
      expect(body, key).not.to.have.property(key);
    }
    // an empty body is said in words, not left out (issue 17: no empty ticket without a note)
    expect(body).to.include({
      from: 'jane@example.com',
      read: false,
      content: '<div>[mailbridge: this message has no body]</div>',
    });
    expect(body.ext_msg_id).to.be.a('string');
  });
});
