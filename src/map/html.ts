// HTML for the API: sanitized so that a helpdesk can show it safely, and text turned into HTML.
import sanitizeHtml from 'sanitize-html';

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

const OPTIONS: sanitizeHtml.IOptions = {
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
  allowedSchemes: ['http', 'https', 'mailto', 'tel', 'cid'],
  allowedSchemesByTag: { img: ['http', 'https', 'cid', 'data'] },
  allowProtocolRelative: false,
  allowedStyles: {
    '*': Object.fromEntries(STYLE_PROPERTIES.map(p => [p, [SAFE_CSS_VALUE]])),
  },
  // Links open outside the helpdesk and do not leak the opener.
  transformTags: {
    a: sanitizeHtml.simpleTransform('a', { rel: 'noopener noreferrer' }),
  },
};

/** Removes scripts, event handlers, javascript: URLs and unsafe CSS; keeps formatting. */
export function sanitizeMailHtml(html: string): string {
  return sanitizeHtml(html, OPTIONS);
}

/** The text of an HTML document, for `content: text` when a message has no text part. */
export function htmlToPlainText(html: string): string {
  return sanitizeHtml(html, { allowedTags: [], allowedAttributes: {} })
    .replace(/\n{3,}/g, '\n\n')
    .trim();
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
