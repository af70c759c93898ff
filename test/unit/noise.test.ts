// mail/noise.ts: auto-replies, bounces, read receipts and list mail, told from the envelope's
// null sender and the header block; over header sets, then over every message of the corpus.
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  autoReplySubject,
  classifyNoise,
  type NoiseKind,
} from '../../src/mail/noise.js';
import { headerBlock } from '../../src/spool/spool-file.js';

const CORPUS = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

/** A header block from `Name: value` lines. */
const h = (...lines: string[]) => lines.join('\r\n');

describe('classifyNoise over header sets', () => {
  const cases: Array<{
    name: string;
    headers: string;
    nullSender?: boolean;
    kind: NoiseKind | null;
    signal?: string;
  }> = [
    {
      name: 'a person writing',
      headers: h('From: Jane <jane@example.com>', 'Subject: Printer'),
      kind: null,
    },
    {
      name: 'Auto-Submitted: no is a person',
      headers: h('From: jane@example.com', 'Auto-Submitted: no'),
      kind: null,
    },
    {
      name: 'RFC 3834 auto-replied, with a comment',
      headers: h('Auto-Submitted: auto-replied (vacation)'),
      kind: 'auto-reply',
      signal: 'Auto-Submitted: auto-replied',
    },
    {
      name: 'auto-generated, any case',
      headers: h('auto-submitted: Auto-Generated'),
      kind: 'auto-reply',
      signal: 'Auto-Submitted: auto-generated',
    },
    {
      name: 'X-Autoreply',
      headers: h('X-Autoreply: yes'),
      kind: 'auto-reply',
      signal: 'X-Autoreply',
    },
    {
      name: 'X-Autorespond',
      headers: h('X-Autorespond: Out of office'),
      kind: 'auto-reply',
      signal: 'X-Autorespond',
    },
    {
      name: 'Precedence: auto_reply',
      headers: h('Precedence: auto_reply'),
      kind: 'auto-reply',
      signal: 'Precedence: auto_reply',
    },
    {
      name: 'iCloud vacation',
      headers: h('X-Apple-Action: VACATION'),
      kind: 'auto-reply',
    },
    {
      name: 'the null sender of the envelope',
      headers: h('From: jane@example.com'),
      nullSender: true,
      kind: 'auto-reply',
      signal: 'null sender (MAIL FROM:<>)',
    },
    {
      name: 'a null Return-Path',
      headers: h('Return-Path: <>', 'From: jane@example.com'),
      kind: 'auto-reply',
    },
    {
      name: 'a DSN',
      headers: h(
        'Content-Type: multipart/report; report-type=delivery-status; boundary=x',
      ),
      kind: 'bounce',
      signal: 'Content-Type: multipart/report; report-type=delivery-status',
    },
    {
      name: 'a DSN, quoted report-type, the auto-reply header too',
      headers: h(
        'Auto-Submitted: auto-replied',
        'Content-Type: multipart/report; boundary="b"; report-type="delivery-status"',
      ),
      kind: 'bounce',
    },
    {
      name: 'an ARF report',
      headers: h('Content-Type: multipart/report; report-type=feedback-report'),
      kind: 'bounce',
    },
    {
      name: 'X-Failed-Recipients',
      headers: h('X-Failed-Recipients: a@example.com'),
      kind: 'bounce',
      signal: 'X-Failed-Recipients',
    },
    {
      name: 'From MAILER-DAEMON, with a comment',
      headers: h('From: MAILER-DAEMON@mx.example.org (Mail Delivery System)'),
      kind: 'bounce',
      signal: 'From: MAILER-DAEMON',
    },
    {
      name: 'From a bare mailer-daemon',
      headers: h('From: mailer-daemon'),
      kind: 'bounce',
    },
    {
      name: 'a person writing as postmaster',
      headers: h('From: Bob <postmaster@example.com>'),
      kind: null,
    },
    {
      name: 'a read receipt',
      headers: h(
        'Content-Type: multipart/report; report-type=disposition-notification;',
      ),
      kind: 'receipt',
    },
    {
      name: 'Precedence: bulk',
      headers: h('Precedence: bulk'),
      kind: 'bulk',
      signal: 'Precedence: bulk',
    },
    {
      name: 'Precedence: junk',
      headers: h('Precedence: junk'),
      kind: 'bulk',
    },
    {
      name: 'Precedence: list',
      headers: h('Precedence: list'),
      kind: 'bulk',
    },
    {
      name: 'List-Id',
      headers: h('List-Id: <dev.lists.example.org>'),
      kind: 'bulk',
      signal: 'List-Id',
    },
    {
      name: 'List-Unsubscribe',
      headers: h('List-Unsubscribe: <mailto:leave@example.org>'),
      kind: 'bulk',
      signal: 'List-Unsubscribe',
    },
    {
      name: 'an out-of-office sent as bulk is an auto-reply',
      headers: h('Precedence: bulk', 'Auto-Submitted: auto-replied'),
      kind: 'auto-reply',
    },
    {
      name: 'a header named in a body-like line is not a header',
      headers: h('Subject: About List-Id: and Precedence: bulk'),
      kind: null,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.kind ?? 'none'}`, () => {
      const noise = classifyNoise(c.headers, c.nullSender);
      expect(noise?.kind ?? null).to.equal(c.kind);
      if (c.signal) expect(noise?.signal).to.equal(c.signal);
    });
  }
});

describe('auto-replies known by their subject alone', () => {
  const rows: Array<[subject: string, prefix: string | undefined]> = [
    ['Automatic reply: Printer on fire', 'Automatic reply'],
    ['Out of Office: Printer on fire', 'Out of Office'],
    ['Out of Office AutoReply: Printer', 'Out of Office AutoReply'],
    ['AutoReply: your ticket', 'AutoReply'],
    ['Auto-Reply: your ticket', 'Auto-Reply'],
    ['Auto Response: your ticket', 'Auto Response'],
    ['Abwesenheitsnotiz: Drucker brennt', 'Abwesenheitsnotiz'],
    ['Automatische Antwort: Drucker brennt', 'Automatische Antwort'],
    ['Réponse automatique : Imprimante', 'Réponse automatique'],
    [
      '=?utf-8?Q?R=C3=A9ponse_automatique=C2=A0:?= Imprimante',
      'Réponse automatique',
    ],
    [
      '=?iso-8859-1?Q?Respuesta_autom=E1tica:_Impresora?=',
      'Respuesta automática',
    ],
    [
      '=?UTF-8?B?QXV0b21hdGlzY2hlIEFudHdvcnQ6IERydWNrZXI=?=',
      'Automatische Antwort',
    ],
    ['Risposta automatica: Stampante', 'Risposta automatica'],
    ['Automatisch antwoord: Printer', 'Automatisch antwoord'],
    ['Automatiskt svar: Skrivare', 'Automatiskt svar'],
    ['Automaattinen vastaus: Tulostin', 'Automaattinen vastaus'],
    ['Odpowiedź automatyczna: Drukarka', 'Odpowiedź automatyczna'],
    ['Automatická odpověď: Tiskárna', 'Automatická odpověď'],
    ['Out of Office', 'Out of Office'],
    // a person writing about, or answering, an auto-reply
    ['RE: Automatic reply: Printer on fire', undefined],
    ['Fwd: Out of Office: Printer', undefined],
    ['Out of office hours support is down', undefined],
    ['Automatic replies do not work in Outlook', undefined],
    ['Question about your auto-reply settings', undefined],
    ['Abwesenheit am Montag', undefined],
    ['', undefined],
  ];
  for (const [subject, prefix] of rows) {
    it(`${JSON.stringify(subject)} -> ${prefix ?? 'a person'}`, () => {
      expect(autoReplySubject(subject)).to.equal(prefix);
      const noise = classifyNoise(
        h('From: jane@example.com', `Subject: ${subject}`),
      );
      expect(noise).to.deep.equal(
        prefix ? { kind: 'auto-reply', signal: `Subject: ${prefix}` } : null,
      );
    });
  }

  it('a header says it first: its signal wins over the subject', () => {
    expect(
      classifyNoise(h('Subject: Automatic reply: x', 'X-Autoreply: yes')),
    ).to.deep.equal({ kind: 'auto-reply', signal: 'X-Autoreply' });
  });

  it('an auto-reply subject on list mail: an auto-reply, not bulk', () => {
    expect(
      classifyNoise(h('Subject: Out of Office: x', 'List-Id: <l.example.org>'))
        ?.kind,
    ).to.equal('auto-reply');
  });
});

describe('classifyNoise over the corpus', () => {
  /** category/file -> its kind, for every corpus message that is noise */
  function classified(): Map<string, NoiseKind> {
    const found = new Map<string, NoiseKind>();
    for (const dir of readdirSync(CORPUS, { withFileTypes: true })) {
      if (!dir.isDirectory()) continue;
      for (const file of readdirSync(join(CORPUS, dir.name))) {
        if (!file.endsWith('.eml')) continue;
        const raw = readFileSync(join(CORPUS, dir.name, file));
        const noise = classifyNoise(headerBlock(raw));
        if (noise) found.set(`${dir.name}/${file}`, noise.kind);
      }
    }
    return found;
  }
  const found = classified();
  const inFolder = (folder: string) =>
    readdirSync(join(CORPUS, folder)).filter(f => f.endsWith('.eml'));

  it('every message of auto-replies/ is an auto-reply', () => {
    for (const file of inFolder('auto-replies')) {
      expect(found.get(`auto-replies/${file}`), file).to.equal('auto-reply');
    }
  });

  it('every message of bounces-dsn/ is a bounce or report, the MDN a receipt', () => {
    for (const file of inFolder('bounces-dsn')) {
      const expected = file.includes('disposition_notification')
        ? 'receipt'
        : 'bounce';
      expect(found.get(`bounces-dsn/${file}`), file).to.equal(expected);
    }
  });

  it('the bounces filed elsewhere in the corpus are bounces', () => {
    // real DSNs kept for their charset, MIME or TNEF oddities
    const elsewhere = [...found]
      .filter(
        ([file, kind]) => kind === 'bounce' && !file.startsWith('bounces-dsn/'),
      )
      .map(([file]) => file)
      .sort();
    expect(elsewhere).to.deep.equal([
      'charsets/sisimai-lhost-outlook-01.eml',
      'charsets/sisimai-lhost-postfix-48.eml',
      'headers-edge/sisimai-lhost-gmx-01.eml',
      'malformed/mikelmail-raw_email_with_mimepart_without_content_type.eml',
      'tnef/sisimai-lhost-amazonworkmail-01.eml',
      'tnef/sisimai-lhost-amazonworkmail-07.eml',
    ]);
  });

  it('the list and bulk mail of the corpus, and no other message', () => {
    const bulk = [...found]
      .filter(([, kind]) => kind === 'bulk')
      .map(([file]) => file)
      .sort();
    expect(bulk).to.deep.equal([
      'attachments/flanker-message-external-body.eml',
      'forwarded/flanker-apache-message-news-mime.eml',
      'headers-edge/mikelmail-empty_in_reply_to.eml',
      'html/deltachat-mailinglist_ttline.eml',
      'html/spamscope-mail_test_13.eml',
      'plain/james-frnog.eml',
      'signed-encrypted/deltachat-mailinglist_dhl.eml',
      'signed-encrypted/james-pgpSignedMail.eml',
      'signed-encrypted/mimekit-Announce-GnuPG-2.1.20-released.eml',
      'threading/deltachat-mailinglist_with_mimepart_footer.eml',
      'threading/flanker-from-encoding.eml',
      'threading/james-mail1.eml',
    ]);
  });

  it('no other message of the corpus is an auto-reply or a receipt', () => {
    const others = [...found]
      .filter(
        ([file, kind]) =>
          (kind === 'auto-reply' && !file.startsWith('auto-replies/')) ||
          (kind === 'receipt' && !file.startsWith('bounces-dsn/')),
      )
      .map(([file]) => file);
    expect(others).to.deep.equal([]);
  });
});
