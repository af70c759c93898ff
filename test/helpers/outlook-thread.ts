// A long Outlook thread, as Outlook desktop writes it: each reply puts its new text above a
// From:/Sent:/To:/Subject: block (in a border-top div) and the whole previous message below it.

/** The signature and notice Outlook users' companies add to every message (about 5 KB). */
function signature(n: number): string {
  const notice =
    '<span style="font-size:8.0pt;font-family:&quot;Arial&quot;,sans-serif;color:gray">' +
    'CONFIDENTIALITY NOTICE: this e-mail and any attachments are for the exclusive use of the ' +
    'intended recipient and may contain confidential information. </span>';
  return (
    `<p class="MsoNormal"><span style="font-size:11.0pt;color:#1F497D">Person ${n}<br>` +
    `Support Engineer, Example Corp<br>+1 555 0100 ${n}</span></p>` +
    `<p class="MsoNormal">${notice.repeat(24)}</p>`
  );
}

/** The header block Outlook writes above the message it quotes. */
function header(n: number): string {
  return (
    '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">' +
    `<p class="MsoNormal"><b>From:</b> Person ${n} &lt;person${n}@example.com&gt;<br>` +
    `<b>Sent:</b> Monday, March ${(n % 28) + 1}, 2026 10:${String(n % 60).padStart(2, '0')} AM<br>` +
    `<b>To:</b> Support &lt;support@example.com&gt;<br>` +
    '<b>Subject:</b> RE: Printer on floor 3</p></div>'
  );
}

/** The HTML body of reply `count` of a thread (1 is the first message). */
export function outlookThreadHtml(count: number): string {
  let body = '';
  for (let n = 1; n <= count; n++) {
    const text = `<p class="MsoNormal">Reply ${n}: the printer on floor 3 still jams.</p>`;
    body =
      n === 1
        ? text + signature(n)
        : text + signature(n) + header(n - 1) + body;
  }
  return `<html><head><style>p.MsoNormal{margin:0cm}</style></head><body lang="EN-US"><div class="WordSection1">${body}</div></body></html>`;
}

/** The raw message of reply `count`: HTML only, base64, with In-Reply-To and References. */
export function outlookThreadMessage(count: number): Buffer {
  const html = Buffer.from(outlookThreadHtml(count)).toString('base64');
  const lines = html.match(/.{1,76}/g) ?? [];
  return Buffer.from(
    [
      `From: Person ${count} <person${count}@example.com>`,
      'To: support@example.com',
      'Subject: RE: Printer on floor 3',
      `Message-ID: <thread-${count}@example.com>`,
      `In-Reply-To: <thread-${count - 1}@example.com>`,
      `References: <thread-1@example.com> <thread-${count - 1}@example.com>`,
      'MIME-Version: 1.0',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      ...lines,
      '',
    ].join('\r\n'),
  );
}
