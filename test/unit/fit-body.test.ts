// api/fit-body.ts: a body past api.maxBodyBytes, or refused with 413, loses its largest
// attachments one by one (named in a note in content), then its text; never more than needed.
import { expect } from 'chai';
import {
  fitBody,
  humanSize,
  leaveOutMore,
  postFitted,
} from '../../src/api/fit-body.js';
import type { Posted } from '../../src/api/http-exchange.js';
import { serializePayload } from '../../src/api/payload-stream.js';
import type { ApiPayload } from '../../src/map/api-payload.js';

/** An attachment of `size` bytes (its file is never read here: only sizes count). */
const file = (name: string, size: number) => ({
  name,
  file: { path: `/nonexistent/${name}`, size },
});

const BODY: ApiPayload = {
  from: 'jane@example.net',
  subject: 'Photos',
  ext_msg_id: '<photos@example.net>',
  content: '<div>See attached.</div>',
  attachments: [
    file('small.txt', 100),
    file('big.jpg', 30_000),
    file('mid.pdf', 10_000),
  ],
};

const names = (p: ApiPayload) => (p.attachments ?? []).map(a => a.name);
const length = (p: ApiPayload) => serializePayload(p).length;

describe('api/fit-body: a body the API can take', () => {
  it('a body within the limit is posted as it is', () => {
    const fitted = fitBody(BODY, length(BODY), 'html');
    expect(fitted.payload).to.equal(BODY);
    expect(fitted.leftOut).to.deep.equal([]);
  });

  const cases: Array<[string, number, string[], string[]]> = [
    [
      'just over: the largest goes',
      length(BODY) - 1,
      ['small.txt', 'mid.pdf'],
      ['big.jpg'],
    ],
    [
      'far over: the next largest too',
      10_000,
      ['small.txt'],
      ['big.jpg', 'mid.pdf'],
    ],
    [
      'tiny: every attachment goes, the text stays',
      300,
      [],
      ['big.jpg', 'mid.pdf', 'small.txt'],
    ],
  ];
  for (const [name, limit, kept, leftOut] of cases) {
    it(`${name} (limit ${limit})`, () => {
      const fitted = fitBody(BODY, limit, 'html');
      expect(names(fitted.payload)).to.deep.equal(kept);
      expect(fitted.leftOut.map(a => a.name)).to.deep.equal(leftOut);
      expect(fitted.contentLeftOut).to.equal(false);
      // the note, escaped HTML after the content, names each with its size
      expect(fitted.payload.content).to.match(
        /^<div>See attached\.<\/div>\n<div>/,
      );
      for (const a of fitted.leftOut) {
        expect(fitted.payload.content).to.contain(
          `${a.name} (${humanSize(a.file.size)})`,
        );
      }
      expect(fitted.payload.content).to.contain('mailbridge queue held');
    });
  }

  it('a text content gets a text note', () => {
    const fitted = fitBody(
      { ...BODY, content: 'See attached.' },
      10_000,
      'text',
    );
    expect(fitted.payload.content).to.match(
      /^See attached\.\n\n\[Left out by mailbridge, too large for the helpdesk API: attachments: big\.jpg \(29 KiB\), mid\.pdf \(10 KiB\)\. .*\]$/,
    );
  });

  it('an attachment name cannot inject markup into the note', () => {
    const fitted = fitBody(
      {
        ext_msg_id: '<x@y>',
        content: '<div>x</div>',
        attachments: [file('<img src=x onerror=alert(1)>.png', 5000)],
      },
      1024,
      'html',
    );
    expect(fitted.payload.content).not.to.contain('<img');
    expect(fitted.payload.content).to.contain(
      '&lt;img src=x onerror=alert(1)&gt;.png',
    );
  });

  it('with no attachment left, the text gives way to a note; then nothing more can go', () => {
    const bare: ApiPayload = {
      ext_msg_id: '<x@y>',
      subject: 'x',
      content: 'y'.repeat(5000),
    };
    const first = leaveOutMore(
      bare,
      { payload: bare, leftOut: [], contentLeftOut: false },
      'html',
    );
    expect(first!.contentLeftOut).to.equal(true);
    expect(first!.payload.content).to.match(
      /^<div>Left out by mailbridge.*the message text\./,
    );
    expect(leaveOutMore(bare, first!, 'html')).to.equal(null);
  });

  it('postFitted: after each 413 it posts again with less, and says what it left out', async () => {
    const seen: string[][] = [];
    const answers: Posted[] = [
      { status: 413 },
      { status: 413 },
      { status: 201 },
    ];
    const posted = await postFitted(
      BODY,
      { limit: 1_000_000, format: 'html' },
      async p => {
        seen.push(names(p));
        return answers.shift()!;
      },
    );
    expect(seen).to.deep.equal([
      ['small.txt', 'big.jpg', 'mid.pdf'],
      ['small.txt', 'mid.pdf'],
      ['small.txt'],
    ]);
    expect(posted).to.deep.equal({
      status: 201,
      leftOut: ['big.jpg', 'mid.pdf'],
    });
  });

  it('postFitted: a 413 with nothing left to leave out is the answer', async () => {
    let calls = 0;
    const posted = await postFitted(
      { ext_msg_id: '<x@y>', content: 'x' },
      { limit: 1_000_000, format: 'html' },
      async () => {
        calls++;
        return { status: 413 };
      },
    );
    // once whole, once with the text replaced by the note
    expect(calls).to.equal(2);
    expect(posted).to.deep.equal({
      status: 413,
      leftOut: ['(the message text)'],
    });
  });

  it('postFitted: a body taken at once leaves nothing out', async () => {
    const posted = await postFitted(
      BODY,
      { limit: 1_000_000, format: 'html' },
      async () => ({
        status: 201,
      }),
    );
    expect(posted).to.deep.equal({ status: 201 });
  });
});
