// stripQuotedReplies over the corpus: every threading/ message's stripped content, reviewed by
// hand (its first line and how long it is), forwarded/ kept whole, and a 40-reply Outlook thread.
import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';
import type { Envelope } from '../../src/mail/envelope.js';
import { htmlToPlainText } from '../../src/map/html.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import { buildPayloads } from '../../src/pipeline/build-payloads.js';
import { outlookThreadMessage } from '../helpers/outlook-thread.js';

const CORPUS = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

const ENVELOPE: Envelope = {
  id: 'corpus',
  mailFrom: 'sender@example.net',
  rcptTo: ['support@example.com'],
  receivedAt: '2026-01-01T00:00:00.000Z',
};

function config(
  stripQuotedReplies: boolean,
  content: 'auto' | 'text' = 'auto',
): Config {
  return loadConfig({
    env: { NODE_ENV: 'test' },
    overrides: {
      mapping: { content },
      routes: [{ match: '*', stripQuotedReplies }],
    },
  });
}

const STRIP = config(true);
const KEEP = config(false);

/** The content one route posts for a message (a corpus path or raw bytes). */
async function contentOf(
  source: string | Buffer,
  cfg: Config,
): Promise<string> {
  const message = await parseMessage(
    typeof source === 'string' ? `${CORPUS}${source}` : source,
  );
  try {
    const [body] = buildPayloads(message, ENVELOPE, cfg);
    return String(body?.payload.content ?? '');
  } finally {
    await message.dispose();
  }
}

/** The first line an agent reads. */
function firstLine(content: string): string | undefined {
  return htmlToPlainText(content)
    .split('\n')
    .map(line => line.trim())
    .find(Boolean);
}

/**
 * Each threading/ message: the stripped content's first line, its length, and the length
 * without stripping (reviewed: the quote gone, the new text whole).
 */
const THREADING: Record<
  string,
  [first: string, stripped: number, full: number]
> = {
  // ALL-INKL webmail: "X schrieb am DATE:" and a blockquote cite="mid:..."
  'deltachat-allinkl-quote.eml': ["It's 1.0.", 29, 307],
  // GMX: div name="quote" with Gesendet:/Von:/An:/Betreff:
  'deltachat-gmx-quote.eml': ['YIPPEEEEEE', 142, 649],
  // a list footer, no quote: kept
  'deltachat-mailinglist_with_mimepart_footer.eml': [
    'Hi mr ... [html part]',
    29,
    29,
  ],
  // a bottom-post: the quote above goes, the answer (and its signature) stays
  'flanker-from-encoding.eml': [
    "Isn't that the case for almost every other server you care to mention?",
    190,
    469,
  ],
  // OpenPaaS: <cite> and nested blockquotes; the signature stays
  'james-html_body.eml': ['Dear Anton,', 844, 7671],
  // a JIRA notification, no quote: kept
  'james-mail1.eml': ['Tellier Benoit created MAILBOX-234:', 770, 770],
  'james-multipart_complex.eml': ['blabla bloblo', 35, 35],
  'mikelmail-raw_email_reply.eml': ['Message body', 23, 23],
  // the whole body is inside gmail_quote: a cut would leave nothing, so it is kept
  'mikelmail-two_from_in_message.eml': ['When sending email:', 335, 335],
  // a bottom-post
  'mimekit-epilogue.eml': [
    'Don\'t you mean: "NeXTstep, NeXTSTEP, NEXTSTEP..."?',
    71,
    122,
  ],
  // Exchange "R: R: R: I:", no quote in the body: kept
  'mimekit-issue358.eml': ['Test headers', 163, 163],
  // Android Gmail: gmail_quote with a Russian attribution
  'talon-android.eml': ['Hello', 13, 359],
  // Mac Mail text: the attribution inside the > block
  'talon-apple_mail_2.eml': ['Hello', 16, 136],
  'talon-gmail.eml': ['Hello', 17, 295],
  // "Sent from my iPhone", then the attribution and the quote: both go
  'talon-iphone.eml': ['Hello', 16, 139],
  // no In-Reply-To, no References, subject "Test": not known to be a reply (it could be a
  // forward whose subject was edited), so its From:/Sent: block and the rest are kept
  'talon-outlook.eml': ['Allo! Follow up MIME!', 1451, 1451],
  // Yahoo: ----- Original Message -----
  'talon-yahoo.eml': ['Hello', 16, 313],
};

describe('strip quotes over the corpus', () => {
  it('has a reviewed line for every threading/ message', () => {
    expect(readdirSync(`${CORPUS}threading`).sort()).to.deep.equal(
      Object.keys(THREADING).sort(),
    );
  });

  for (const [file, [first, stripped, full]] of Object.entries(THREADING)) {
    it(`threading/${file}: "${first}" (${full} -> ${stripped} characters)`, async () => {
      const kept = await contentOf(`threading/${file}`, STRIP);
      const whole = await contentOf(`threading/${file}`, KEEP);
      expect(firstLine(kept)).to.equal(first);
      expect(kept).to.have.length(stripped);
      expect(whole).to.have.length(full);
    });
  }

  it('10 of the 17 threading/ messages lose their quoted history', () => {
    const shorter = Object.values(THREADING).filter(([, s, f]) => s < f);
    expect(shorter).to.have.length(10);
  });

  for (const file of readdirSync(`${CORPUS}forwarded`).sort()) {
    it(`forwarded/${file} is posted whole`, async () => {
      expect(await contentOf(`forwarded/${file}`, STRIP)).to.equal(
        await contentOf(`forwarded/${file}`, KEEP),
      );
    });
  }

  it('mapping.content text strips the text part too', async () => {
    const text = await contentOf(
      'threading/talon-yahoo.eml',
      config(true, 'text'),
    );
    expect(text).to.equal('Hello');
  });

  it('a 40-reply Outlook thread posts its last reply only', async () => {
    const raw = outlookThreadMessage(40);
    const whole = await contentOf(raw, KEEP);
    const kept = await contentOf(raw, STRIP);
    expect(whole.length).to.be.above(240_000);
    expect(kept.length).to.be.below(6_000);
    expect(whole.length / kept.length).to.be.above(40);
    expect(firstLine(kept)).to.equal(
      'Reply 40: the printer on floor 3 still jams.',
    );
    expect(kept).not.to.include('Reply 39');
  });
});
