// Unit tables for stripQuotedReplies: each client's quote style in text and HTML, what is kept
// when unsure, and which messages count as replies.
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors/bridge-error.js';
import { htmlToPlainText, sanitizeMailHtml } from '../../src/map/html.js';
import { isStrippableReply } from '../../src/map/reply-kind.js';
import { stripHtmlQuotes } from '../../src/map/strip-html-quotes.js';
import { stripTextQuotes } from '../../src/map/strip-text-quotes.js';
import { subjectPrefixes } from '../../src/map/quote-patterns.js';

/** The text an agent would read of stripped HTML (sanitized as the mapper does). */
const shown = (html: string) =>
  htmlToPlainText(sanitizeMailHtml(stripHtmlQuotes(html)));

describe('strip quotes', () => {
  describe('stripTextQuotes cuts', () => {
    const rows: Array<[style: string, text: string, kept: string]> = [
      [
        'Gmail: "On ... wrote:" and > lines',
        'Thanks, it works.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <m@x.com> wrote:\n\n> Hi\n> there\n',
        'Thanks, it works.',
      ],
      [
        'a wrapped attribution',
        'Hello\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <\nm@x.com> wrote:\n> Hi',
        'Hello',
      ],
      [
        'iPhone: signature, attribution, quote',
        'Hello\n\nSent from my iPhone\n\nOn Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:\n\n> Hi',
        'Hello',
      ],
      [
        'an unquoted message below a dated attribution (Outlook mobile)',
        'Yes.\n\nOn Tue, 3 Mar 2026 at 10:00, Bob <bob@x.com> wrote:\nIs it fixed?',
        'Yes.',
      ],
      [
        'Outlook: separator and From:/Sent:/To:/Subject:',
        'Done.\n\n________________________________\nFrom: Bob <bob@x.com>\nSent: Monday, March 2, 2026 10:00 AM\nTo: Support\nSubject: Printer\n\nIt jams.',
        'Done.',
      ],
      [
        'Yahoo: ----- Original Message -----',
        'Hello\n\n\n----- Original Message -----\nFrom: "bob" <bob@x.org>\nTo: x@y.com\nSent: Monday, April 2, 2012 5:44 PM\nSubject: Test\n\nHi',
        'Hello',
      ],
      [
        'Outlook: -----Original Message-----',
        'OK\n-----Original Message-----\nFrom: a@b.c\nit',
        'OK',
      ],
      [
        'German: Am ... schrieb',
        'Danke!\n\nAm 08.12.2020 um 12:59 schrieb Bob <bob@gmx.de>:\n> Jetzt?',
        'Danke!',
      ],
      [
        'French: Le ... a écrit',
        'Merci\n\nLe lun. 2 mars 2026 à 10:00, Bob <bob@x.fr> a écrit :\n> Bonjour',
        'Merci',
      ],
      [
        'Spanish: El ... escribió',
        'Gracias\nEl lun, 2 mar 2026 a las 10:00, Ana (<ana@x.es>) escribió:\n> Hola',
        'Gracias',
      ],
      [
        'Italian: Il ... ha scritto',
        'Grazie\n\nIl giorno lun 2 mar 2026 alle ore 10:00 Ana <ana@x.it> ha scritto:\n> Ciao',
        'Grazie',
      ],
      [
        'Dutch: Op ... schreef',
        'Bedankt\n\nOp ma 2 mrt. 2026 om 10:00 schreef Jan <jan@x.nl>:\n> Hoi',
        'Bedankt',
      ],
      [
        'Swedish: Den ... skrev',
        'Tack\n\nDen 2 mars 2026 10:00 skrev Eva <eva@x.se>:\n> Hej',
        'Tack',
      ],
      [
        'Polish: W dniu ... napisał',
        'Dzięki\n\nW dniu 2.03.2026 o 10:00, Jan <jan@x.pl> napisał:\n> Cześć',
        'Dzięki',
      ],
      [
        'Chinese: ... 写道：',
        '谢谢\n\n在 2026年3月2日 10:00，张三 <z@x.cn> 写道：\n> 你好',
        '谢谢',
      ],
      [
        'Outlook in German: Von:/Gesendet:/An:/Betreff:',
        'Erledigt.\n\nVon: Bob <bob@x.de>\nGesendet: Montag, 2. März 2026 10:00\nAn: Support\nBetreff: Drucker\n\nEr klemmt.',
        'Erledigt.',
      ],
      [
        'GMX: Gesendet:/Von:/An:/Betreff:',
        'YIPPEE\n \nGesendet: Dienstag, 08. Dezember 2020 um 12:59 Uhr\nVon: bob@gmx.de\nAn: "Alice" <alice@gmx.de>\nBetreff: Re: x\nNow?',
        'YIPPEE',
      ],
      [
        'Russian: ... написал:',
        'Привет\n02.04.2012 14:20 пользователь "bob@x.org" <\nbob@x.org> написал:\n\n> Hi',
        'Привет',
      ],
      [
        'a trailing > block with its attribution inside (Apple Mail)',
        'Hello\n> On 22 Aug 2015, at 19:21, Adam <a@x.com> wrote:\n>\n> Hi there!',
        'Hello',
      ],
      [
        'a bottom-post: the answer below one leading block',
        "Marc wrote:\n> If you have a real uid of root...\n\nIsn't that the case for every server?",
        "Isn't that the case for every server?",
      ],
    ];
    for (const [style, text, kept] of rows) {
      it(style, () => expect(stripTextQuotes(text)).to.equal(kept));
    }
  });

  describe('stripTextQuotes keeps the whole text', () => {
    const rows: Array<[why: string, text: string]> = [
      ['no quote', 'Hello\n\nThe printer jams.\n-- \nJane'],
      [
        'answers between quotes (interleaved)',
        'On Mon, Bob <b@x.com> wrote:\n> Is it on?\nYes.\n> Is it plugged in?\nNo.',
      ],
      [
        'answers between quotes after a top text',
        'See below.\n\n> Is it on?\nYes.\n> Plugged in?\nNo.',
      ],
      [
        'a forwarded message first',
        'FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@x.com>\nDate: Mon, 2 Mar 2026\nSubject: x\n\nHi',
      ],
      [
        'only a quote (nothing new)',
        'On Mon, 2 Mar 2026, Bob <b@x.com> wrote:\n> Hi',
      ],
      ['only a signature above the quote', 'Sent from my iPhone\n\n> Hi'],
      [
        'a "wrote:" sentence that names no date or address',
        'Here is what the manual wrote:\nPress reset.',
      ],
      [
        'a header-like line that is no header block',
        'From: the sales team\nPlease call back.',
      ],
    ];
    for (const [why, text] of rows) {
      it(why, () => expect(stripTextQuotes(text)).to.equal(text));
    }
  });

  describe('stripHtmlQuotes cuts', () => {
    const rows: Array<[style: string, html: string, kept: string]> = [
      [
        'Gmail: div.gmail_quote',
        'Hello<br><br><div class="gmail_quote">On Mon, Apr 2, 2012, Megan &lt;m@x&gt; wrote:<br><blockquote class="gmail_quote">Hi</blockquote></div><br>',
        'Hello',
      ],
      [
        'Gmail (2024): gmail_quote_container',
        '<div dir="ltr">Yes</div><br><div class="gmail_quote gmail_quote_container"><div class="gmail_attr">On Mon, Bob wrote:</div><blockquote>q</blockquote></div>',
        'Yes',
      ],
      [
        'Outlook: hr and div#divRplyFwdMsg',
        '<div>Fixed now.</div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Bob<br><b>Sent:</b> Monday<br><b>To:</b> Support<br><b>Subject:</b> x</div><div>It jams.</div>',
        'Fixed now.',
      ],
      [
        'Outlook desktop: From:/Sent: paragraph in a border-top div',
        '<div class="WordSection1"><p class="MsoNormal">Done.</p><div style="border:none;border-top:solid #E1E1E1 1.0pt"><p class="MsoNormal"><b>From:</b> Bob &lt;b@x.com&gt;<br><b>Sent:</b> Monday, March 2, 2026<br><b>To:</b> Support<br><b>Subject:</b> Printer</p></div><p class="MsoNormal">It jams.</p></div>',
        'Done.',
      ],
      [
        'Outlook in German: Von:/Gesendet: paragraph',
        '<p class="MsoNormal">Erledigt.</p><p class="MsoNormal"><b>Von:</b> Bob &lt;b@x.de&gt;<br><b>Gesendet:</b> Montag, 2. März 2026 10:00<br><b>An:</b> Support<br><b>Betreff:</b> Drucker</p><p class="MsoNormal">Er klemmt.</p>',
        'Erledigt.',
      ],
      [
        'a reply to a forward: the forward is part of the quoted history',
        '<div>Thanks, done.</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Mar 2, 2026, Bob &lt;b@x.com&gt; wrote:</div><blockquote class="gmail_quote">FYI<div class="gmail_quote">---------- Forwarded message ---------<br>From: Carol</div></blockquote></div>',
        'Thanks, done.',
      ],
      [
        'Apple Mail: blockquote type=cite after an attribution',
        '<div>Sure.</div><div><br><blockquote type="cite"><div>On 9 May 2022, at 17:41, Anton &lt;a@x.com&gt; wrote:</div><div>Yes</div></blockquote></div>',
        'Sure.',
      ],
      [
        'Thunderbird: moz-cite-prefix and blockquote type=cite',
        '<p>Works.</p><div class="moz-cite-prefix">On 02.03.26 10:00, Bob wrote:<br></div><blockquote type="cite">Does it?</blockquote>',
        'Works.',
      ],
      [
        'Yahoo: div.yahoo_quoted',
        '<div>Hello</div><div id="yahoo_quoted_123" class="yahoo_quoted"><div>On Monday, Bob wrote:</div><div>Hi</div></div>',
        'Hello',
      ],
      [
        'GMX: div name=quote',
        '<div>YIPPEE</div><div name="quote"><div><b>Gesendet:</b> Dienstag<br><b>Von:</b> bob@gmx.de</div><div name="quoted-content">Now?</div></div>',
        'YIPPEE',
      ],
      [
        'a blockquote with a cite attribute after a German attribution',
        '<p>It\'s 1.0.</p><p>Hocuri schrieb am 17.03.2021 14:25 (GMT +01:00):</p><blockquote cite="mid:x@y"><pre>What\'s the version?</pre></blockquote>',
        "It's 1.0.",
      ],
      [
        'iPhone Mail: the signature above blockquote type=cite goes too',
        '<div>Hello</div><div><br><div id="AppleMailSignature">Sent from my iPhone</div><br><blockquote type="cite"><div>On Apr 3, 2012, at 4:19 PM, bob &lt;b@x.com&gt; wrote:</div>Hi</blockquote></div>',
        'Hello',
      ],
      [
        'Outlook for Android: "Get Outlook for Android" and divRplyFwdMsg',
        '<div>Sure, 3pm.</div><div><br></div><div>Get <a href="https://aka.ms/x">Outlook for Android</a></div><hr><div id="divRplyFwdMsg"><b>From:</b> Bob</div><div>When?</div>',
        'Sure, 3pm.',
      ],
      [
        'a <cite> and a trailing blockquote (OpenPaaS, TMail)',
        '<p>Dear Anton,</p><cite>On May 10, 2023 6:35 AM, from g@example.com</cite><blockquote>Hi Anton</blockquote>',
        'Dear Anton,',
      ],
    ];
    for (const [style, html, kept] of rows) {
      it(style, () => expect(shown(html)).to.equal(kept));
    }
  });

  describe('stripHtmlQuotes keeps the whole HTML', () => {
    const rows: Array<[why: string, html: string]> = [
      ['no quote', '<p>Hello</p><p>The printer jams.</p>'],
      [
        'an answer after the quote (bottom-post, interleaved)',
        '<blockquote type="cite">Is it on?</blockquote><p>Yes.</p>',
      ],
      [
        'answers typed into a Gmail quote',
        '<p>See below</p><div class="gmail_quote">On Mon, Bob wrote:<blockquote>Is it on?</blockquote>Yes.<blockquote>Plugged?</blockquote>No.</div>',
      ],
      [
        'a Gmail forward',
        '<p>FYI</p><div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message ---------<br>From: Bob</div><p>Hi</p></div>',
      ],
      [
        'an Apple Mail forward',
        '<div>FYI</div><div>Begin forwarded message:</div><blockquote type="cite"><div>From: Bob</div></blockquote>',
      ],
      [
        'a quote that is the whole message',
        '<div class="gmail_quote"><div>When sending email:</div></div>',
      ],
      [
        'a quote without attribution or cite',
        '<p>See:</p><blockquote>A poem</blockquote>',
      ],
      [
        'HTML nested deeper than 2000',
        `x${'<div>'.repeat(2100)}<blockquote type="cite">q</blockquote>`,
      ],
    ];
    for (const [why, html] of rows) {
      it(why, () => expect(stripHtmlQuotes(html)).to.equal(html));
    }
  });

  describe('isStrippableReply', () => {
    const rows: Array<
      [subject: string, irt: string | undefined, refs: string[], reply: boolean]
    > = [
      ['Printer', '<a@x>', [], true],
      ['Printer', undefined, ['<a@x>'], true],
      ['Re: Printer', undefined, [], true],
      ['AW: Drucker', undefined, [], true],
      ['Sv: Skrivare', undefined, [], true],
      ['R: R: I: FR-selca', undefined, [], true],
      ['Re: [#T123] Printer', undefined, [], true],
      ['Printer', undefined, [], false],
      ['Fwd: Re: Printer', '<a@x>', ['<a@x>'], false],
      ['FW: Printer', '<a@x>', [], false],
      ['WG: Drucker', '<a@x>', [], false],
      ['[Fwd: Printer]', '<a@x>', [], false],
    ];
    for (const [subject, inReplyTo, references, reply] of rows) {
      it(`${JSON.stringify(subject)} ${inReplyTo ?? ''} ${references.join(' ')}: ${reply}`, () =>
        expect(isStrippableReply({ subject, inReplyTo, references })).to.equal(
          reply,
        ));
    }
  });

  describe('the route key', () => {
    const load = (route: Record<string, string | boolean>) =>
      loadConfig({ env: { NODE_ENV: 'test' }, overrides: { routes: [route] } });

    it('is optional (absent: not stripped) and takes a boolean', () => {
      expect(load({ match: '*' }).routes[0]?.stripQuotedReplies).to.equal(
        undefined,
      );
      expect(
        load({ match: '*', stripQuotedReplies: true }).routes[0]
          ?.stripQuotedReplies,
      ).to.equal(true);
    });

    it('refuses anything else, naming the key', () => {
      expect(() => load({ match: '*', stripQuotedReplies: 'yes' }))
        .to.throw(ConfigError)
        .with.property('message')
        .that.includes('routes.0.stripQuotedReplies');
    });
  });

  it('subjectPrefixes reads the leading prefixes, list tags skipped', () => {
    expect(subjectPrefixes('Re: AW: [list] Fwd: x')).to.deep.equal([
      're',
      'aw',
      'fwd',
    ]);
    expect(subjectPrefixes('Re[2]: x')).to.deep.equal(['re']);
    expect(subjectPrefixes('Meeting at 10:30')).to.deep.equal([]);
  });
});
