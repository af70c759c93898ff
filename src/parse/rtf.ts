// PURE: a TNEF body's compressed RTF ([MS-OXRTFCP]) and the HTML encapsulated in it ([MS-OXRTFEX]).

/** The dictionary every compressed RTF stream starts from. */
const PREBUF = Buffer.from(
  '{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx',
  'latin1',
);

const COMPRESSED = 0x75465a4c; // 'LZFu'
const UNCOMPRESSED = 0x414c454d; // 'MELA'

/** The RTF document of a PR_RTF_COMPRESSED value. Throws a RangeError when it is not one. */
export function decompressRtf(value: Buffer): Buffer {
  if (value.length < 16) throw new RangeError('compressed RTF cut short');
  const rawSize = value.readUInt32LE(4);
  const type = value.readUInt32LE(8);
  if (type === UNCOMPRESSED) return value.subarray(16, 16 + rawSize);
  if (type !== COMPRESSED) throw new RangeError('not compressed RTF');
  const dictionary = Buffer.alloc(4096);
  PREBUF.copy(dictionary);
  let write = PREBUF.length;
  // never more than the header says, whatever the stream claims
  const out = Buffer.alloc(rawSize);
  let produced = 0;
  let offset = 16;
  const emit = (byte: number) => {
    if (produced < rawSize) out[produced++] = byte;
    dictionary[write] = byte;
    write = (write + 1) % 4096;
  };
  while (offset < value.length && produced < rawSize) {
    const control = value[offset++]!;
    for (let bit = 0; bit < 8 && offset < value.length; bit++) {
      if ((control & (1 << bit)) === 0) {
        emit(value[offset++]!);
        continue;
      }
      if (offset + 1 >= value.length) return out.subarray(0, produced);
      const word = value.readUInt16BE(offset);
      offset += 2;
      const from = word >> 4;
      const length = (word & 0xf) + 2;
      if (from === write) return out.subarray(0, produced);
      for (let i = 0; i < length; i++) emit(dictionary[(from + i) % 4096]!);
    }
  }
  return out.subarray(0, produced);
}

/** Destinations whose text is not the document's. */
const SKIPPED = new Set([
  'fonttbl',
  'colortbl',
  'stylesheet',
  'info',
  'pict',
  'object',
  'header',
  'footer',
  'mhtmltag',
]);

interface Group {
  skip: boolean;
  htmltag: boolean;
  htmlrtf: boolean;
  /** characters to skip after a \uN */
  uc: number;
}

/**
 * The HTML an RTF document encapsulates (`\fromhtml1`), or undefined for an RTF document of
 * its own. Text and `\*\htmltag` groups are kept; what `\htmlrtf` marks is RTF only.
 */
export function htmlFromRtf(rtf: Buffer): string | undefined {
  const source = rtf.toString('latin1');
  if (!/\\fromhtml1/.test(source.slice(0, 4096))) return undefined;
  const codepage = /\\ansicpg(\d+)/.exec(source)?.[1] ?? '1252';
  const decoder = textDecoder(`windows-${codepage}`);
  let html = '';
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length) html += decoder.decode(Buffer.from(bytes));
    bytes = [];
  };
  const stack: Group[] = [];
  let group: Group = { skip: false, htmltag: false, htmlrtf: false, uc: 1 };
  let pendingSkip = 0;
  const keeping = () =>
    !group.skip && (group.htmltag || !group.htmlrtf) && pendingSkip === 0;
  const TOKEN =
    /\\([a-z]+)(-?\d+)? ?|\\'([0-9a-f]{2})|\\([^a-z])|([{}])|([\r\n]+)|([^\\{}\r\n]+)/giy;
  for (const m of source.matchAll(TOKEN)) {
    const [, word, arg, hex, symbol, brace, , text] = m;
    if (brace === '{') {
      stack.push(group);
      group = { ...group };
      if (source.startsWith('\\*', m.index + 1)) {
        const name = /^\\\*\\([a-z]+)/i.exec(
          source.slice(m.index + 1, m.index + 40),
        )?.[1];
        if (name === 'htmltag') group.htmltag = true;
        else group.skip = true;
      }
      continue;
    }
    if (brace === '}') {
      group = stack.pop() ?? group;
      continue;
    }
    if (word) {
      if (SKIPPED.has(word)) group.skip = true;
      else if (word === 'htmlrtf') group.htmlrtf = arg !== '0';
      else if (word === 'uc') group.uc = Number(arg ?? 1);
      else if (word === 'u' && arg !== undefined) {
        if (keeping()) {
          flush();
          const code = Number(arg);
          html += String.fromCharCode(code < 0 ? code + 65536 : code);
        }
        pendingSkip = group.uc;
        continue;
      } else if (keeping()) {
        if (word === 'par' || word === 'line') {
          flush();
          html += '\r\n';
        } else if (word === 'tab') {
          flush();
          html += '\t';
        }
      }
      continue;
    }
    if (hex !== undefined) {
      if (pendingSkip > 0) pendingSkip--;
      else if (keeping()) bytes.push(parseInt(hex, 16));
      continue;
    }
    if (symbol !== undefined) {
      if (keeping() && '\\{}'.includes(symbol)) {
        flush();
        html += symbol;
      }
      continue;
    }
    if (text !== undefined) {
      let kept = text;
      if (pendingSkip > 0) {
        const skipped = Math.min(pendingSkip, kept.length);
        kept = kept.slice(skipped);
        pendingSkip -= skipped;
      }
      // 8-bit text is in the document's code page, like \'hh
      if (kept && keeping()) {
        for (let i = 0; i < kept.length; i++) bytes.push(kept.charCodeAt(i));
      }
    }
  }
  flush();
  return html.trim() ? html : undefined;
}

/** A decoder for the code page, windows-1252 when this Node does not know it. */
function textDecoder(label: string): { decode(bytes: Uint8Array): string } {
  try {
    return new TextDecoder(label);
  } catch {
    return new TextDecoder('windows-1252');
  }
}
