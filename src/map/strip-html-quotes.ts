// An HTML reply without its quoted history: cut at the quote container each client writes.
//
// Runs on the raw HTML, before sanitizing: the marks clients leave (class="gmail_quote",
// id="divRplyFwdMsg", type="cite", class="moz-cite-prefix", name="quote") are attributes the
// sanitizer removes. What it returns is HTML still to be sanitized, as any raw HTML is.
import {
  childrenOf,
  classesOf,
  cutFrom,
  hasMeaningfulAfter,
  isElement,
  isMeaningful,
  nestsWithin,
  parseDocument,
  previousMeaningful,
  render,
  subtree,
  textFrom,
  textOf,
  type HtmlElement,
  type HtmlNode,
} from './html-dom.js';
import {
  MAX_MARKER_LINE,
  headerKind,
  introducesQuote,
  isForwardMarker,
  isHeaderBlock,
  isMobileSignature,
  isOriginalMessageLine,
  type HeaderKind,
} from './quote-patterns.js';

/** Elements within a line of text. */
const INLINE = new Set([
  'a',
  'span',
  'font',
  'b',
  'i',
  'em',
  'strong',
  'u',
  'small',
]);

/** The most quote candidates judged in one message (each judgement walks part of it). */
const MAX_CANDIDATES = 50;

/**
 * HTML nested deeper than this is kept as it is, unparsed (html-dom.ts nestsWithin): real mail,
 * a 40-reply thread included, stays far below; parsing costs time in the square of the depth.
 */
const MAX_DEPTH = 2000;

/** Classes and ids of the quote containers that hold the whole quoted message. */
const QUOTE_CLASSES = [
  'gmail_quote_container', // Gmail (2024 on): attribution and quote together
  'gmail_quote', // Gmail, Android Gmail
  'yahoo_quoted', // Yahoo Mail
  'protonmail_quote', // Proton Mail
  'moz-cite-prefix', // Thunderbird's attribution, the blockquote after it
];

/** Outlook (web, Windows, Mac) marks its From:/Sent: block; the quoted message comes after it. */
const OUTLOOK_IDS = ['divrplyfwdmsg', 'appendonsend', 'olk_src_body_section'];

type Candidate = {
  node: HtmlNode;
  kind: 'container' | 'blockquote' | 'header';
};

/**
 * The HTML before the quoted history, or the HTML as it came when unsure. Cut at the first of:
 * Outlook's reply header (divRplyFwdMsg, appendonsend, a From:/Sent:/To:/Subject: block in its
 * own paragraph, "-----Original Message-----"), which take everything after them; a quote
 * container (Gmail's gmail_quote, Yahoo's yahoo_quoted, GMX's name="quote", Thunderbird's
 * moz-cite-prefix, Proton's) or a blockquote that cites (Apple Mail and Thunderbird's
 * type="cite", a cite attribute, an attribution line just before it) when nothing but
 * whitespace follows it and no answer stands between its quotes. A forwarded-message line at
 * the cut keeps everything; so does a cut that leaves nothing, and HTML nested too deep.
 */
export function stripHtmlQuotes(html: string): string {
  if (!nestsWithin(html, MAX_DEPTH)) return html;
  const document = parseDocument(html);
  let judged = 0;
  for (const candidate of candidates(document.children)) {
    if (++judged > MAX_CANDIDATES) break;
    const cut = cutPoint(candidate);
    if (!cut) continue;
    if (startsForward(cut)) return html;
    cutFrom(cut);
    if (!document.children.some(isMeaningful)) return html;
    const stripped = render(document);
    // a "Sent from my iPhone" left last goes too, unless it is all there is
    if (!removeMobileSignature(document.children)) return stripped;
    return document.children.some(isMeaningful) ? render(document) : stripped;
  }
  return html;
}

/**
 * Removes the last text of a document when it is a mobile signature ("Sent from my iPhone"),
 * with the elements that hold nothing else; whether it did.
 */
function removeMobileSignature(roots: HtmlNode[]): boolean {
  let last: HtmlNode | undefined;
  for (const root of roots) {
    for (const node of subtree(root)) {
      if (node.type === 'text' && /[^\s\u00a0]/.test(node.data)) last = node;
    }
  }
  if (!last) return false;
  // the line the text belongs to: "Get <a>Outlook for Android</a>" is one line
  let top: HtmlNode = last;
  while (isInline(top.parent as HtmlNode | null)) top = top.parent as HtmlNode;
  const block = top.parent as HtmlNode | null;
  if (block && !isDocumentLevel(block)) top = block;
  if (!isMobileSignature(textOf(top, 201).replace(/\s+/g, ' ').trim())) {
    return false;
  }
  // with the elements around it that hold nothing else
  for (;;) {
    const parent = top.parent as HtmlNode | null;
    if (!parent || isDocumentLevel(parent)) break;
    if (childrenOf(parent).some(c => c !== top && isMeaningful(c))) break;
    top = parent;
  }
  cutFrom(top);
  return true;
}

/** The document itself, <html> or <body>: never removed as a signature's container. */
function isDocumentLevel(node: HtmlNode): boolean {
  return !isElement(node) || ['body', 'html'].includes(node.name);
}

function isInline(node: HtmlNode | null): boolean {
  return node !== null && isElement(node) && INLINE.has(node.name);
}

/** The quote candidates of a document, in document order. */
function* candidates(roots: HtmlNode[]): Generator<Candidate> {
  for (const root of roots) {
    for (const node of subtree(root)) {
      if (node.type === 'text') {
        if (startsHeaderText(node.data)) yield { node, kind: 'header' };
        continue;
      }
      if (!isElement(node)) continue;
      const id = (node.attribs.id ?? '').toLowerCase();
      if (OUTLOOK_IDS.includes(id)) yield { node, kind: 'header' };
      else if (isQuoteContainer(node)) yield { node, kind: 'container' };
      else if (node.name === 'blockquote') yield { node, kind: 'blockquote' };
    }
  }
}

function isQuoteContainer(element: HtmlElement): boolean {
  const classes = classesOf(element);
  return (
    QUOTE_CLASSES.some(c => classes.includes(c)) ||
    (element.attribs.name ?? '').toLowerCase() === 'quote'
  );
}

/** A text node that may open Outlook's header block or an "Original Message" line. */
function startsHeaderText(data: string): boolean {
  const line = data.trimStart().slice(0, MAX_MARKER_LINE);
  const kind = headerKind(line);
  return kind === 'from' || kind === 'date' || isOriginalMessageLine(line);
}

/** Where to cut for a candidate, or null when it is not a quote to cut. */
function cutPoint({ node, kind }: Candidate): HtmlNode | null {
  switch (kind) {
    case 'header':
      return outlookHeader(node);
    case 'container':
      return !hasMeaningfulAfter(node) && !isInterleaved(node) ? node : null;
    case 'blockquote':
      return citedBlockquote(node as HtmlElement);
  }
}

/**
 * Outlook's header: the element whose text starts with a From:/Sent: block (or an original
 * message line), widened to the outermost ancestor that starts with it; with the <hr> or
 * border that Outlook puts above it.
 */
function outlookHeader(node: HtmlNode): HtmlNode | null {
  const top = outermostStartingWith(node);
  const lines = textFrom(top, 800)
    .split('\n')
    .map(l => l.trim())
    .filter(Boolean);
  // an element candidate is one Outlook marked by its id: no need to read the block
  const marked = isElement(node);
  const kinds = lines
    .slice(0, 10)
    .map(headerKind)
    .filter((k): k is HeaderKind => k !== undefined);
  const confirmed =
    marked ||
    isOriginalMessageLine(lines[0] ?? '') ||
    (headerKind(lines[0] ?? '') !== undefined && isHeaderBlock(kinds));
  if (!confirmed) return null;
  return hrAbove(top) ?? top;
}

/** The <hr> Outlook draws just above its header (only whitespace between), or null. */
function hrAbove(node: HtmlNode): HtmlNode | null {
  let at = node.prev as HtmlNode | null;
  while (at && at.type === 'text' && !/[^\s\u00a0]/.test(at.data)) {
    at = at.prev as HtmlNode | null;
  }
  return at && isElement(at) && at.name === 'hr' ? at : null;
}

/** The outermost ancestor of `node` (itself included) that starts with it. */
function outermostStartingWith(node: HtmlNode): HtmlNode {
  let top = node;
  for (;;) {
    const parent = top.parent as HtmlNode | null;
    if (!parent || parent.type === 'root') return top;
    if (isElement(parent) && ['body', 'html'].includes(parent.name)) return top;
    if (previousMeaningful(top) !== null) return top;
    top = parent;
  }
}

/**
 * A blockquote that is the trailing quote of a reply: it cites (type="cite", a cite attribute)
 * or an attribution stands just before it (a <cite>, Thunderbird's moz-cite-prefix, an
 * "On ... wrote:" line); nothing meaningful after it. The cut takes the attribution too.
 */
function citedBlockquote(element: HtmlElement): HtmlNode | null {
  if (hasMeaningfulAfter(element)) return null;
  const before = previousMeaningful(element);
  const attribution = before && isAttributionNode(before) ? before : null;
  const cites =
    (element.attribs.type ?? '').toLowerCase() === 'cite' ||
    element.attribs.cite !== undefined;
  if (!cites && !attribution) return null;
  return attribution ?? element;
}

/** A <cite>, a moz-cite-prefix, or a short line that introduces a quote (quote-patterns.ts). */
function isAttributionNode(node: HtmlNode): boolean {
  if (
    isElement(node) &&
    (node.name === 'cite' || classesOf(node).includes('moz-cite-prefix'))
  ) {
    return true;
  }
  const text = textOf(node, MAX_MARKER_LINE + 1, 200).replace(/\s+/g, ' ');
  return introducesQuote(text);
}

/**
 * Whether a quote container holds answers between its quotes (inline replies typed into the
 * quote): meaningful text outside blockquotes after the first blockquote.
 */
function isInterleaved(container: HtmlNode): boolean {
  let seenQuote = false;
  for (const node of subtree(container)) {
    if (isElement(node) && node.name === 'blockquote') {
      if (seenQuote && !insideQuote(node, container)) return true;
      seenQuote = true;
    } else if (
      seenQuote &&
      node.type === 'text' &&
      /[^\s\u00a0]/.test(node.data) &&
      !insideQuote(node, container)
    ) {
      return true;
    }
  }
  return false;
}

/** Whether a node lies inside a blockquote below `container`. */
function insideQuote(node: HtmlNode, container: HtmlNode): boolean {
  for (
    let at = node.parent as HtmlNode | null;
    at && at !== container;
    at = at.parent as HtmlNode | null
  ) {
    if (isElement(at) && at.name === 'blockquote') return true;
  }
  return false;
}

/** Whether the quote at the cut, or the line just above it, starts a forwarded message. */
function startsForward(cut: HtmlNode): boolean {
  const filled = (node: HtmlNode) =>
    textOf(node, 300, 200)
      .split('\n')
      .filter(line => /\S/.test(line));
  const before = previousMeaningful(cut);
  // its first lines (a forward quoted deeper down is history, not news), or the line above it
  const lines = [
    ...filled(cut).slice(0, 2),
    ...(before ? filled(before).slice(-1) : []),
  ];
  return lines.some(isForwardMarker);
}
