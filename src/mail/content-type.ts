// The boundary a Content-Type header declares, read as mailparser's splitter reads it (libmime's
// parseHeaderValue with stripComments), so that mail/structure.ts counts the parts it will find.

/** libmime's isWSP: the whitespace between the tokens of a header value. */
function isWsp(chr: string): boolean {
  return (
    chr === ' ' ||
    chr === '\t' ||
    chr === '\r' ||
    chr === '\n' ||
    chr === '\f' ||
    chr === '\v'
  );
}

/** The index of the `)` that closes the comment opened at `start`, or -1. Comments nest. */
function commentEnd(str: string, start: number): number {
  let depth = 0;
  for (let i = start; i < str.length; i++) {
    const chr = str.charAt(i);
    if (chr === '\\') i++;
    else if (chr === '(') depth++;
    else if (chr === ')' && --depth === 0) return i;
  }
  return -1;
}

/**
 * The parameters of a header value, names in lower case, the first of a name kept: libmime's
 * tokenizer, step for step (quotes, escapes, comments, junk after a quoted string).
 */
export function headerParams(str: string): Map<string, string> {
  const params = new Map<string, string>();
  let stripComments = true;
  let key: string | false = false;
  let value = '';
  let valueEnd = 0;
  let inKey = false;
  let quote = false;
  let quoteClosed = false;
  let escaped = false;
  let tokenOpen = false;
  const commit = (): void => {
    const collected = value.substring(0, valueEnd);
    value = '';
    valueEnd = 0;
    if (inKey) {
      const name = collected.toLowerCase();
      if (name && !params.has(name)) params.set(name, '');
    } else if (key !== false && !params.has(key)) {
      params.set(key, collected);
    }
  };
  for (let i = 0; i < str.length; i++) {
    const chr = str.charAt(i);
    if (stripComments && chr === '(' && !quote && !escaped && !tokenOpen) {
      let end = commentEnd(str, i);
      if (end < 0 && str.indexOf(';', i) < 0) end = str.length - 1;
      if (end >= 0) {
        i = end;
        continue;
      }
      stripComments = false;
    }
    if (inKey) {
      if (chr === '=') {
        key = value.substring(0, valueEnd).toLowerCase();
        value = '';
        valueEnd = 0;
        inKey = false;
        tokenOpen = true;
      } else if (chr === ';') {
        commit();
      } else if (!isWsp(chr)) {
        value += chr;
        valueEnd = value.length;
      } else if (value.length) {
        value += chr;
      }
      continue;
    }
    if (quoteClosed && chr !== ';') {
      escaped = false;
      continue;
    }
    if (escaped) {
      value += chr;
      valueEnd = value.length;
      tokenOpen = key !== false && !quote;
    } else if (chr === '\\') {
      escaped = true;
      continue;
    } else if (chr === '"') {
      quoteClosed = quote;
      quote = !quote;
      tokenOpen = false;
    } else if (!quote && chr === ';') {
      commit();
      inKey = true;
      tokenOpen = false;
      quoteClosed = false;
    } else if (!quote && isWsp(chr)) {
      if (value.length) value += chr;
      tokenOpen = false;
    } else {
      value += chr;
      valueEnd = value.length;
      tokenOpen = key !== false && !quote;
    }
    escaped = false;
  }
  commit();
  return params;
}

/** RFC 2231 pieces of the boundary: `boundary*`, `boundary*0`, `boundary*1*`... */
const CONTINUATION = /^boundary\*((\d+)\*?)?$/;

/** The boundary from RFC 2231 pieces (which win over a plain `boundary`), or undefined. */
function continuedBoundary(params: Map<string, string>): string | undefined {
  const pieces: Array<{ nr: number; value: string }> = [];
  let encoded = false;
  for (const [name, raw] of params) {
    const match = CONTINUATION.exec(name);
    if (!match) continue;
    const nr = Number(match[2]) || 0;
    let value = raw;
    const charsetForm = /^([^']*)'[^']*'(.*)$/.exec(raw);
    if (nr === 0 && name.endsWith('*') && charsetForm) {
      encoded = true;
      value = charsetForm[2]!;
    }
    pieces.push({ nr, value });
  }
  if (pieces.length === 0) return undefined;
  const joined = pieces
    .sort((a, b) => a.nr - b.nr)
    .map(piece => piece.value)
    .join('');
  // percent-encoded bytes; any that are not ASCII make the boundary void below anyway
  return encoded
    ? joined.replace(/%([0-9a-f]{2})/gi, (_, hex: string) =>
        String.fromCharCode(parseInt(hex, 16)),
      )
    : joined;
}

/**
 * The boundary declared by a Content-Type header given whole (`Content-Type: ...`, folded lines
 * joined by CRLF, bytes read as latin1), or null: none, empty, or not ASCII (the splitter then
 * uses none). Trailing whitespace is dropped, as the splitter drops it.
 */
export function boundaryOf(header: string): string | null {
  const line = header.replace(/(?:\r?\n|\r)[ \t]*/g, ' ').trim();
  const value = (/^\s*([^:]+):(.*)$/.exec(line)?.[2] ?? '').trim();
  const params = headerParams(value);
  const boundary = (
    continuedBoundary(params) ??
    params.get('boundary') ??
    ''
  ).trimEnd();
  // eslint-disable-next-line no-control-regex
  if (!boundary || /[^\x00-\x7f]/.test(boundary)) return null;
  return boundary;
}
