// HTML for the API: sanitized so that a helpdesk can show it safely, and text turned into HTML.
import sanitizeHtml from 'sanitize-html';
import type { MappingConfig } from '../config/schema.js';

/** A CSS value with no url(), expression() or escapes: no style injection. */
const SAFE_CSS_VALUE =
  /^(?!.*(url|expression|javascript|\\|@import))[^;{}<>]*$/i;

const STYLE_PROPERTIES = [
  'color',
  'background-color',
  'font',
  'font-family',
  'font-size',
  'font-style',
  'font-weight',
  'line-height',
  'text-align',
  'text-decoration',
  'text-indent',
  'text-transform',
  'vertical-align',
  'white-space',
  'margin',
  'margin-top',
  'margin-right',
  'margin-bottom',
  'margin-left',
  'padding',
  'padding-top',
  'padding-right',
  'padding-bottom',
  'padding-left',
  'border',
  'border-top',
  'border-right',
  'border-bottom',
  'border-left',
  'border-collapse',
  'border-color',
  'border-style',
  'border-width',
  'border-radius',
  'width',
  'max-width',
  'min-width',
  'height',
  'display',
  'list-style-type',
];

const TABLE_ATTRIBUTES = [
  'align',
  'valign',
  'bgcolor',
  'width',
  'height',
  'border',
  'cellpadding',
  'cellspacing',
  'colspan',
  'rowspan',
];

/** Elements dropped with their text: sanitize-html's list, plus the document <title>. */
const NON_TEXT_TAGS = ['script', 'style', 'textarea', 'option', 'title'];

const OPTIONS: sanitizeHtml.IOptions = {
  nonTextTags: NON_TEXT_TAGS,
  allowedTags: [
    ...sanitizeHtml.defaults.allowedTags,
    'img',
    'font',
    'center',
    'u',
    's',
    'del',
    'ins',
    'sup',
    'sub',
    'span',
    'div',
  ],
  allowedAttributes: {
    a: ['href', 'name', 'title', 'target', 'rel'],
    img: ['src', 'alt', 'title', 'width', 'height'],
    font: ['color', 'face', 'size'],
    table: TABLE_ATTRIBUTES,
    td: TABLE_ATTRIBUTES,
    th: TABLE_ATTRIBUTES,
    tr: TABLE_ATTRIBUTES,
    '*': ['style', 'dir', 'lang', 'align'],
  },
  // no cid: survives: map/cid.ts has resolved every image a message's parts hold
  allowedSchemes: ['http', 'https', 'mailto', 'tel'],
  allowedSchemesByTag: { img: ['http', 'https', 'data'] },
  allowProtocolRelative: false,
  allowedStyles: {
    '*': Object.fromEntries(STYLE_PROPERTIES.map(p => [p, [SAFE_CSS_VALUE]])),
  },
  // Links open outside the helpdesk and do not leak the opener.
  transformTags: {
    a: sanitizeHtml.simpleTransform('a', { rel: 'noopener noreferrer' }),
    img: (tagName, attribs) => ({ tagName, attribs: withSafeData(attribs) }),
  },
};

/** A data: URL the content may show: base64 of an image type browsers render as a picture. */
const IMAGE_DATA_URL =
  /^data:image\/(?:png|jpeg|gif|webp|bmp);base64,[A-Za-z0-9+/=\s]*$/i;

/** An image's attributes without a data: src that is not IMAGE_DATA_URL (an HTML or SVG document). */
function withSafeData(
  attribs: sanitizeHtml.Attributes,
): sanitizeHtml.Attributes {
  // eslint-disable-next-line no-control-regex -- these are what browsers ignore in a URL
  const bare = (attribs.src ?? '').replace(/^[\u0000-\u0020]+/, '');
  if (!/^data:/i.test(bare) || IMAGE_DATA_URL.test(bare)) return attribs;
  const { src: _unsafe, ...rest } = attribs;
  return rest;
}

/**
 * Whether an image's source is fetched from elsewhere when the HTML is shown: anything but a
 * cid: or data: URL (a relative one too, since the helpdesk would fetch it). The scheme is read
 * as sanitize-html reads it, without the characters up to the space that browsers ignore.
 */
function isRemoteSource(src: string | undefined): boolean {
  // eslint-disable-next-line no-control-regex -- these are what browsers ignore in a URL
  const bare = (src ?? '').replace(/[\u0000-\u0020]+/g, '');
  return bare !== '' && !/^(?:cid|data):/i.test(bare);
}

/**
 * mapping.remoteImages block: a remote image becomes a link to it, named by its alt text, so
 * that the sender cannot learn when and where the message is read (a tracking pixel, a
 * "web bug"); an agent who wants the image follows the link.
 */
const blockRemoteImage: sanitizeHtml.Transformer = (tagName, attribs) => {
  if (!isRemoteSource(attribs.src)) {
    return { tagName, attribs: withSafeData(attribs) };
  }
  const alt = (attribs.alt ?? '').replace(/\s+/g, ' ').trim();
  return {
    tagName: 'a',
    attribs: { href: attribs.src!, rel: 'noopener noreferrer' },
    text: alt ? `[image: ${alt}]` : '[image]',
  };
};

const OPTIONS_BY_REMOTE_IMAGES: Record<
  MappingConfig['remoteImages'],
  sanitizeHtml.IOptions
> = {
  keep: OPTIONS,
  block: {
    ...OPTIONS,
    transformTags: { ...OPTIONS.transformTags, img: blockRemoteImage },
  },
};

/**
 * Removes scripts, event handlers, javascript: URLs and unsafe CSS; keeps formatting. With
 * `remoteImages: 'block'` an image that is not cid: or data: becomes a link to it, with its
 * alt text (mapping.remoteImages); 'keep' (the default of this function) leaves it an image.
 */
export function sanitizeMailHtml(
  html: string,
  remoteImages: MappingConfig['remoteImages'] = 'keep',
): string {
  return sanitizeHtml(html, OPTIONS_BY_REMOTE_IMAGES[remoteImages]);
}

/** Stands for a line break while the markup is stripped (a private-use character). */
const BREAK = '\uE000';

/** Where a line break (one marker) or a paragraph break (two) falls in the text of HTML. */
const BREAKS: ReadonlyArray<[RegExp, string]> = [
  [/<br\b[^>]*>|<hr\b[^>]*>|<\/(?:div|li|tr|dt|dd)\s*>/gi, BREAK],
  [/<\/(?:p|h[1-6]|blockquote|pre|table|ul|ol|dl)\s*>/gi, BREAK + BREAK],
  [/<\/t[dh]\s*>/gi, ' '],
];

/**
 * The text of HTML too large to parse (mapping.maxHtmlBytes): tags removed and whitespace
 * collapsed in linear passes, entities left as written (the caller escapes the result).
 */
export function reducedText(html: string): string {
  return html
    .replace(/<[^>]*>?/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The text of an HTML document, for `content: text` when a message has no text part:
 * entities decoded, source whitespace collapsed, line breaks at <br> and block ends.
 */
export function htmlToPlainText(html: string): string {
  let marked = html.replaceAll(BREAK, '');
  for (const [pattern, mark] of BREAKS) {
    marked = marked.replace(pattern, match => match + mark);
  }
  return (
    sanitizeHtml(marked, {
      allowedTags: [],
      allowedAttributes: {},
      nonTextTags: NON_TEXT_TAGS,
    })
      // sanitize-html decodes every entity and re-escapes only these four.
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&')
      .replace(/[ \t\r\n\f]+/g, ' ')
      .replace(/\u00A0/g, ' ')
      .replace(new RegExp(` *${BREAK} *`, 'g'), '\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim()
  );
}

/** Plain text as HTML: escaped, line breaks kept. */
export function textToHtml(text: string): string {
  const escaped = text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
  return `<div>${escaped.replace(/\r?\n/g, '<br>\n')}</div>`;
}
