// The logger: JSON lines, and lines below the level dropped before winston formats them.
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';

/** A logger at `level` writing into an array of parsed lines. */
function capture(level: string) {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return { log: createLogger({ level, stream }), lines };
}

/** Meta whose one field counts how often something read it. */
function countingMeta() {
  const meta = { reads: 0 };
  const fields = {};
  Object.defineProperty(fields, 'probe', {
    enumerable: true,
    get: () => {
      meta.reads++;
      return 'read';
    },
  });
  return { meta, fields };
}

describe('createLogger', () => {
  const cases: Array<{
    name: string;
    call: (log: ReturnType<typeof createLogger>, fields: object) => unknown;
    written: boolean;
  }> = [
    { name: 'info at warn', call: (l, f) => l.info('m', f), written: false },
    { name: 'debug at warn', call: (l, f) => l.debug('m', f), written: false },
    { name: 'warn at warn', call: (l, f) => l.warn('m', f), written: true },
    { name: 'error at warn', call: (l, f) => l.error('m', f), written: true },
    {
      name: "log('info') at warn",
      call: (l, f) => l.log('info', 'm', f),
      written: false,
    },
    {
      name: "log('warn') at warn",
      call: (l, f) => l.log('warn', 'm', f),
      written: true,
    },
    {
      name: 'a child: info at warn',
      call: (l, f) => l.child({ queueId: 'Q' }).info('m', f),
      written: false,
    },
    {
      name: 'a child: warn at warn',
      call: (l, f) => l.child({ queueId: 'Q' }).warn('m', f),
      written: true,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.written ? 'written' : 'dropped unread'}`, async () => {
      const { log, lines } = capture('warn');
      const { meta, fields } = countingMeta();
      c.call(log, fields);
      // winston writes through streams: let them flush
      await new Promise(resolve => setImmediate(resolve));
      expect(lines).to.have.length(c.written ? 1 : 0);
      if (c.written) {
        expect(lines[0]).to.include({ message: 'm', probe: 'read' });
        expect(lines[0]).to.have.property('timestamp');
      } else {
        // never formatted: not even its fields were read
        expect(meta.reads).to.equal(0);
      }
    });
  }
});
