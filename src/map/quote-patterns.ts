// The words mail clients write around a quoted reply, in the common languages: one line at a
// time, every pattern linear (no nested quantifiers), every line length-capped by the callers.

/** A line longer than this is never an attribution or a header line (and is not tested). */
export const MAX_MARKER_LINE = 400;

/**
 * The verb ending an attribution ("On Mon, Apr 2, Megan <m@x> wrote:"), in English, German,
 * French, Spanish, Italian, Portuguese, Dutch, the Scandinavian languages, Finnish, Polish,
 * Czech, Hungarian, Turkish, Russian, Chinese, Japanese and Korean, then a colon.
 */
const WROTE =
  /(?:wrote|writes|schrieb|a écrit|écrit|escribió|ha scritto|scrisse|escreveu|schreef|skrev|kirjoitti|napisał\(a\)|napisał|napisala|napisal|pisze|napsal|írta|yazdı|написал\(а\)|написала|написал|писал|写道|寫道|작성|のメッセージ)\s*[:：]\s*$/iu;

/** An attribution: ends with one of the verbs above (one line, or a wrapped one joined). */
export function isAttribution(line: string): boolean {
  return line.length <= MAX_MARKER_LINE && WROTE.test(line.trim());
}

/** How attributions begin: "On", "Am", "Le", "El", "Il", "Em", "Op", "Den", "W dniu", a date. */
const OPENER =
  /^\s*(?:(?:on|am|le|el|il|em|op|den|w dniu|dnia|dne|pe|ma|ti|ke|to|la|su|в)[\s,]|\d|在)/iu;

export function opensAttribution(line: string): boolean {
  return OPENER.test(line.slice(0, 40));
}

/**
 * A line just above a quote that introduces it: an attribution, or a short line ending with a
 * colon that names a date or an address ("Hocuri schrieb am 17.03.2021 14:25:").
 */
export function introducesQuote(line: string): boolean {
  const text = line.trim();
  return (
    isAttribution(text) ||
    (text.length <= MAX_MARKER_LINE &&
      /[:：]$/.test(text) &&
      /[0-9@]/.test(text))
  );
}

/** "-----Original Message-----" and its translations (Outlook, Yahoo, older clients). */
const ORIGINAL_MESSAGE =
  /^\s*[-_=]{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|originalmeddelande|opprinnelig melding|oprindelig meddelelse|wiadomość oryginalna|původní zpráva|исходное сообщение|alkuperäinen viesti|mensagem original|eredeti üzenet|原始邮件|元のメッセージ)\s*[-_=]{2,}\s*$/iu;

export function isOriginalMessageLine(line: string): boolean {
  return line.length <= MAX_MARKER_LINE && ORIGINAL_MESSAGE.test(line);
}

/** The separator Outlook draws above its From:/Sent: block in text. */
export function isOutlookSeparator(line: string): boolean {
  return line.length <= MAX_MARKER_LINE && /^\s*_{10,}\s*$/.test(line);
}

/** What a header line of a quoted message's header block names. */
export type HeaderKind = 'from' | 'date' | 'to' | 'subject' | 'cc';

const HEADER_KEYS: ReadonlyArray<[HeaderKind, RegExp]> = [
  [
    'from',
    /^(?:from|von|de|da|van|från|fra|od|от|lähettäjä|kimden|feladó|发件人|寄件者|差出人|보낸 사람)$/iu,
  ],
  [
    'date',
    /^(?:sent|date|gesendet|datum|envoyé|enviado|enviada|inviato|data|verzonden|skickat|sendt|wysłano|odesláno|отправлено|дата|lähetetty|tarih|elküldve|发送时间|日期|送信日時|보낸 날짜)$/iu,
  ],
  [
    'to',
    /^(?:to|an|à|a|para|aan|till|til|do|komu|кому|vastaanottaja|kime|címzett|收件人|宛先|받는 사람)$/iu,
  ],
  [
    'subject',
    /^(?:subject|betreff|objet|asunto|oggetto|onderwerp|ämne|emne|temat|předmět|тема|aihe|konu|tárgy|assunto|主题|主旨|件名|제목)$/iu,
  ],
  ['cc', /^(?:cc|kopie|копия)$/iu],
];

/**
 * The kind of a header line of a quoted message ("From: Jane <j@x>", "*Sent:* Monday",
 * "Betreff: Re: x"), or undefined. The key is at most 24 characters before its colon.
 */
export function headerKind(line: string): HeaderKind | undefined {
  if (line.length > MAX_MARKER_LINE) return undefined;
  const match = /^\s*\*?([^:：*]{1,24}?)\*?\s*[:：]/u.exec(line);
  if (!match) return undefined;
  const key = match[1]!.trim();
  return HEADER_KEYS.find(([, pattern]) => pattern.test(key))?.[0];
}

/**
 * Whether the header kinds of a run of lines make a quoted message's header block: a sender
 * and a date or a subject, three lines at least (Outlook, Yahoo, GMX, Apple's forwards).
 */
export function isHeaderBlock(kinds: readonly HeaderKind[]): boolean {
  return (
    kinds.length >= 3 &&
    kinds.includes('from') &&
    (kinds.includes('date') || kinds.includes('subject'))
  );
}

/** The one-line signatures mobile clients add ("Sent from my iPhone", "Von meinem iPad gesendet"). */
const MOBILE_SIGNATURE =
  /^\s*(?:sent from my |sent from outlook for |get outlook for |sent from yahoo mail|von meinem .{1,40} gesendet|gesendet von meinem |envoyé de mon |envoyé depuis mon |enviado desde mi |enviado do meu |inviato da |verzonden vanaf mijn |verstuurd vanaf mijn |skickat från min |sendt fra min |wysłane z mojego |отправлено с моего |отправлено из )/iu;

export function isMobileSignature(line: string): boolean {
  return line.length <= 80 && MOBILE_SIGNATURE.test(line);
}

/** A line that starts a forwarded message (Gmail, Thunderbird, Apple Mail, Outlook.com, ...). */
const FORWARD_MARKER =
  /^\s*(?:[-_=]{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|vidarebefordrat meddelande|videresendt meddelelse|videresendt melding|przekazana wiadomość|пересылаемое сообщение|mensagem encaminhada|転送されたメッセージ|转发的邮件)|begin forwarded message\s*:|anfang der weitergeleiteten nachricht\s*:|début du message réexpédié\s*:|inicio del mensaje reenviado\s*:)/iu;

export function isForwardMarker(line: string): boolean {
  return line.length <= MAX_MARKER_LINE && FORWARD_MARKER.test(line);
}

/** A subject's leading prefixes ("Re: AW: Fwd: x" gives re, aw, fwd), at most eight. */
export function subjectPrefixes(subject: string): string[] {
  const prefixes: string[] = [];
  let rest = subject.slice(0, 200);
  for (let i = 0; i < 8; i++) {
    const match =
      /^\s*\[[^\]]{0,40}\]\s*|^\s*([^\s:：[\]]{1,8}?)(?:\[\d+\])?\s*[:：]\s*/u.exec(
        rest,
      );
    if (!match) break;
    // an old-style "[Fwd: subject]" is a forward, not a list tag
    if (/^\s*\[\s*fwd?\s*:/i.test(match[0])) return [...prefixes, 'fwd'];
    if (match[1]) prefixes.push(match[1].toLowerCase());
    rest = rest.slice(match[0].length);
  }
  return prefixes;
}

/** Reply prefixes: Re, Aw (de), Sv (sv, da, no), Antw (nl), R/Rif (it), Odp (pl), RE, 回复, 答复. */
export const REPLY_PREFIXES = new Set([
  're',
  'aw',
  'sv',
  'antw',
  'r',
  'rif',
  'odp',
  'ynt',
  'vá',
  'válasz',
  'atb',
  '回复',
  '答复',
  '回覆',
  '답장',
]);

/** Forward prefixes: Fwd, Fw, WG (de), TR (fr), I (it), RV (es), Enc (pt), Doorst (nl), ... */
export const FORWARD_PREFIXES = new Set([
  'fwd',
  'fw',
  'wg',
  'tr',
  'i',
  'inoltro',
  'rv',
  'enc',
  'doorst',
  'vb',
  'vs',
  'pd',
  'pr',
  'fs',
  'ileti',
  'továbbítás',
  '转发',
  '轉寄',
  '전달',
]);
