// The reviewed record of a corpus message (test/fixtures/corpus-golden): the fields of its body
// that matter to an agent reading the ticket, and what a route's default policies do with it.
// Parsed and mapped in-process exactly as the daemon does (and `preview` shows).
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';
import type { Envelope } from '../../src/mail/envelope.js';
import { classifyNoise } from '../../src/mail/noise.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import { buildPayloads } from '../../src/pipeline/build-payloads.js';
import { noiseAction, noiseReason } from '../../src/pipeline/route-policy.js';
import { readHeaderBlock } from '../../src/mail/header-block.js';

export const CORPUS = fileURLToPath(
  new URL('../fixtures/corpus/', import.meta.url),
);
export const GOLDEN = fileURLToPath(
  new URL('../fixtures/corpus-golden/', import.meta.url),
);
export const REGENERATE =
  'npx tsx test/fixtures/corpus-golden/generate.ts --update';

/** The first characters of the content kept as readable text. */
const EXCERPT_CHARS = 300;

/** The corpus files, relative to the corpus (`folder/name.eml`), sorted. */
export function corpusFiles(): string[] {
  return filesBelow(CORPUS, '.eml');
}

/** The golden records, relative to their folder (`folder/name.json`), sorted. */
export function goldenFiles(): string[] {
  return filesBelow(GOLDEN, '.json');
}

function filesBelow(dir: string, ending: string): string[] {
  const walk = (at: string): string[] =>
    readdirSync(at, { withFileTypes: true }).flatMap(entry => {
      const path = join(at, entry.name);
      if (entry.isDirectory()) return walk(path);
      return entry.name.endsWith(ending) ? [path] : [];
    });
  return walk(dir)
    .map(path => relative(dir, path))
    .sort();
}

/** The golden file of a corpus file: `folder/name.eml` gives `<GOLDEN>/folder/name.json`. */
export function goldenPath(file: string): string {
  return join(GOLDEN, file.replace(/\.eml$/, '.json'));
}

/** config/default.yaml (+ test.yaml) with one catch-all route and its default policies. */
const CONFIG: Config = loadConfig({
  env: { NODE_ENV: 'test' },
  overrides: { routes: [{ match: '*', mailbox_id: 'mb' }] },
});

const ENVELOPE: Envelope = {
  id: 'golden',
  mailFrom: 'sender@example.net',
  rcptTo: ['support@example.com'],
  receivedAt: '2026-01-01T00:00:00.000Z',
};

export interface GoldenContent {
  length: number;
  /** sha256 of the content, first 16 hex digits */
  sha256: string;
  /** html or text, as posted */
  format: 'html' | 'text' | 'none';
  /** the first characters as plain text: tags removed, entities decoded, spaces collapsed */
  excerpt: string;
}

/** [name, size in bytes, sha256 of the decoded bytes: first 12 hex digits] */
export type GoldenAttachment = [string, number, string];

/** The body's fields as posted: an empty value is left out (null here). */
export interface GoldenRecord {
  from: string | null;
  to: string | null;
  cc: string | null;
  subject: string | null;
  ext_msg_id: string;
  reply_to_ext_msg_id: string | null;
  thread_id: string | null;
  priority: number | null;
  attachments: GoldenAttachment[];
  content: GoldenContent;
  /** the route's default policies: deliver, or held/dropped with preview's reason */
  policy: string;
}

/** The record `file` (relative to the corpus) gives today. */
export async function goldenRecord(file: string): Promise<GoldenRecord> {
  const path = join(CORPUS, file);
  const noise = classifyNoise(await readHeaderBlock({ path }));
  const message = await parseMessage(path);
  try {
    const built = buildPayloads(message, ENVELOPE, CONFIG, noise?.kind);
    if (built.length !== 1) throw new Error(`${built.length} bodies`);
    const { group, payload } = built[0]!;
    const action = noise ? noiseAction(group.route, noise) : 'deliver';
    const attachments: GoldenAttachment[] = [];
    for (const attachment of payload.attachments ?? []) {
      const bytes = await readFile(attachment.file.path);
      attachments.push([attachment.name, bytes.length, sha256(bytes, 12)]);
    }
    const content = payload.content ?? '';
    return {
      from: payload.from || null,
      to: payload.to || null,
      cc: payload.cc || null,
      subject: payload.subject || null,
      ext_msg_id: payload.ext_msg_id,
      reply_to_ext_msg_id: payload.reply_to_ext_msg_id || null,
      thread_id: payload.thread_id || null,
      priority: payload.priority ?? null,
      attachments,
      content: {
        length: content.length,
        sha256: sha256(content, 16),
        format: content === '' ? 'none' : looksHtml(content) ? 'html' : 'text',
        excerpt: plainText(content).slice(0, EXCERPT_CHARS),
      },
      policy:
        action === 'deliver'
          ? noise
            ? `deliver (${noise.kind}: ${noise.signal})`
            : 'deliver'
          : `${action === 'hold' ? 'held' : 'dropped'}: ${noiseReason(noise!, action)}`,
    };
  } finally {
    await message.dispose();
  }
}

function sha256(data: string | Buffer, digits: number): string {
  return createHash('sha256').update(data).digest('hex').slice(0, digits);
}

function looksHtml(content: string): boolean {
  return /<\/?[a-z][a-z0-9]*\b[^<>]*>/i.test(content);
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};

/** Content as an agent reads it: tags removed, entities decoded, white space collapsed. */
export function plainText(content: string): string {
  const text = looksHtml(content)
    ? content
        .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
        .replace(/<!--[\s\S]*?-->/g, ' ')
        .replace(/<[^>]*>/g, ' ')
        .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
          if (name[0] === '#') {
            const code =
              name[1] === 'x' || name[1] === 'X'
                ? parseInt(name.slice(2), 16)
                : parseInt(name.slice(1), 10);
            return code > 0 && code <= 0x10ffff
              ? String.fromCodePoint(code)
              : whole;
          }
          return ENTITIES[name.toLowerCase()] ?? whole;
        })
    : content;
  return text.replace(/\s+/g, ' ').trim();
}
