// Small helpers over htmlparser2's DOM for strip-html-quotes.ts: document order, text, removal.
import { DomUtils, parseDocument } from 'htmlparser2';

export type HtmlDocument = ReturnType<typeof parseDocument>;
export type HtmlNode = HtmlDocument['children'][number];
export type HtmlElement = Parameters<typeof DomUtils.getAttributeValue>[0];

export { parseDocument };

/** Elements that never hold others (no end tag). */
const VOID = new Set([
  'area',
  'base',
  'br',
  'col',
  'embed',
  'hr',
  'img',
  'input',
  'link',
  'meta',
  'param',
  'source',
  'track',
  'wbr',
]);

/**
 * Whether the tags of `html` nest at most `limit` deep, counted roughly in one linear pass
 * (an end tag left out counts as still open: an overestimate, never an underestimate of what a
 * well-formed document does). htmlparser2 10's parser costs time in the square of the depth
 * (its open-element stack grows at the front): 200,000 nested <div>s took over 30 s.
 */
export function nestsWithin(html: string, limit: number): boolean {
  let depth = 0;
  // one pass: from each '<' to the next '>', never back (no regular expression over the tag)
  for (let at = html.indexOf('<'); at >= 0; at = html.indexOf('<', at)) {
    const end = html.indexOf('>', at + 1);
    if (end < 0) break;
    const name = /^\/?([a-zA-Z][^\s/>]{0,30})/.exec(
      html.slice(at + 1, at + 34),
    );
    if (name) {
      if (html[at + 1] === '/') depth = Math.max(0, depth - 1);
      else if (!VOID.has(name[1]!.toLowerCase()) && html[end - 1] !== '/') {
        if (++depth > limit) return false;
      }
    }
    at = end + 1;
  }
  return true;
}

export const isElement = (node: HtmlNode): node is HtmlElement =>
  DomUtils.isTag(node);

/** Elements whose end is a line break in the text of HTML. */
const BLOCKS = new Set([
  'p',
  'div',
  'br',
  'tr',
  'li',
  'blockquote',
  'table',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'pre',
  'hr',
]);

/** Elements whose content is never shown. */
const HIDDEN = new Set(['script', 'style', 'head', 'title', 'template']);

/** A node's children (none for text and comments). */
export function childrenOf(node: HtmlNode | HtmlDocument): HtmlNode[] {
  return DomUtils.hasChildren(node) ? (node.children as HtmlNode[]) : [];
}

/**
 * Every node from `start` on, in document order: its subtree, then what follows it, up to the
 * end of the document. Iterative: a deep document does not grow the stack.
 */
export function* fromNode(start: HtmlNode): Generator<HtmlNode> {
  let node: HtmlNode | null = start;
  while (node) {
    yield node;
    const first: HtmlNode | undefined = childrenOf(node)[0];
    if (first && !(isElement(node) && HIDDEN.has(node.name))) {
      node = first;
      continue;
    }
    node = nextInOrder(node);
  }
}

/** The node after `node`'s subtree in document order, or null at the end. */
function nextInOrder(node: HtmlNode): HtmlNode | null {
  let at: HtmlNode | null = node;
  while (at) {
    if (at.next) return at.next as HtmlNode;
    const parent: HtmlNode | HtmlDocument | null = at.parent as
      HtmlNode | HtmlDocument | null;
    at = parent && parent.type !== 'root' ? (parent as HtmlNode) : null;
  }
  return null;
}

/** Every node of a subtree, in document order (iterative). */
export function* subtree(root: HtmlNode): Generator<HtmlNode> {
  const stack: HtmlNode[] = [root];
  while (stack.length) {
    const node = stack.pop()!;
    yield node;
    if (isElement(node) && HIDDEN.has(node.name)) continue;
    const children = childrenOf(node);
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
}

/** Whether a node shows anything: text other than whitespace, or an image. */
export function isMeaningful(root: HtmlNode): boolean {
  for (const node of subtree(root)) {
    if (node.type === 'text' && /[^\s\u00a0]/.test(node.data)) return true;
    if (isElement(node) && node.name === 'img') return true;
  }
  return false;
}

/**
 * The text from `start` on in document order, line breaks at <br> and block ends, up to
 * `limit` characters (or `maxNodes` nodes visited): enough to recognise a header block.
 */
export function textFrom(
  start: HtmlNode,
  limit: number,
  maxNodes = 2000,
): string {
  let text = '';
  let visited = 0;
  for (const node of fromNode(start)) {
    if (++visited > maxNodes || text.length >= limit) break;
    if (node.type === 'text') text += node.data.replace(/[ \t\r\n]+/g, ' ');
    else if (isElement(node) && BLOCKS.has(node.name)) text += '\n';
  }
  return text.slice(0, limit).replace(/\u00a0/g, ' ');
}

/** The text of a node's own subtree, up to `limit` characters (or `maxNodes` nodes). */
export function textOf(root: HtmlNode, limit: number, maxNodes = 2000): string {
  let text = '';
  let visited = 0;
  for (const node of subtree(root)) {
    if (++visited > maxNodes || text.length >= limit) break;
    if (node.type === 'text') text += node.data.replace(/[ \t\r\n]+/g, ' ');
    else if (isElement(node) && BLOCKS.has(node.name)) text += '\n';
  }
  return text.slice(0, limit).replace(/\u00a0/g, ' ');
}

/** The class names of an element, lowercased. */
export function classesOf(element: HtmlElement): string[] {
  return (element.attribs.class ?? '').toLowerCase().split(/\s+/);
}

/**
 * Removes `node` and everything after it in document order (what follows it, and what follows
 * each of its ancestors).
 */
export function cutFrom(node: HtmlNode): void {
  let at: HtmlNode | null = node;
  while (at && at.type !== 'root') {
    while (at.next) DomUtils.removeElement(at.next as HtmlNode);
    at = at.parent as HtmlNode | null;
  }
  DomUtils.removeElement(node);
}

/** Whether anything meaningful follows `node` in document order (outside its subtree). */
export function hasMeaningfulAfter(node: HtmlNode): boolean {
  let at: HtmlNode | null = node;
  while (at && at.type !== 'root') {
    for (let s = at.next as HtmlNode | null; s; s = s.next as HtmlNode | null) {
      if (isMeaningful(s)) return true;
    }
    at = at.parent as HtmlNode | null;
  }
  return false;
}

/** The meaningful node just before `node` among its siblings, or null. */
export function previousMeaningful(node: HtmlNode): HtmlNode | null {
  for (let s = node.prev as HtmlNode | null; s; s = s.prev as HtmlNode | null) {
    if (isMeaningful(s)) return s;
  }
  return null;
}

export function render(document: HtmlDocument): string {
  return DomUtils.getOuterHTML(document.children);
}
