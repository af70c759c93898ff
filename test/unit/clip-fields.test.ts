// Long values clipped in log lines (observability/clip-fields.ts): table-driven, then through
// the logger itself.
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { clipValue } from '../../src/observability/clip-fields.js';
import { createLogger } from '../../src/observability/logger.js';

describe('clipped log values', () => {
  const cases: Array<[name: string, value: unknown, expected: unknown]> = [
    ['a short string', 'abc', 'abc'],
    ['a string of the limit', 'x'.repeat(8), 'x'.repeat(8)],
    ['a longer one', 'x'.repeat(10), 'xxxxxxxx… [2 more characters]'],
    ['a number', 12, 12],
    ['null', null, null],
    [
      'an array',
      ['ab', 'y'.repeat(9)],
      ['ab', 'yyyyyyyy… [1 more characters]'],
    ],
    [
      'a nested object',
      { a: { b: 'z'.repeat(12) }, c: 1 },
      { a: { b: 'zzzzzzzz… [4 more characters]' }, c: 1 },
    ],
  ];
  for (const [name, value, expected] of cases) {
    it(name, () => expect(clipValue(value, 8)).to.deep.equal(expected));
  }

  it('leaves a value with nothing to clip as it is (the same object)', () => {
    const fields = { a: ['x'], b: { c: 'y' } };
    expect(clipValue(fields, 8)).to.equal(fields);
  });

  it('the logger clips every field of a line, the message too', () => {
    const stream = new PassThrough();
    const lines: Record<string, unknown>[] = [];
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    const log = createLogger({ level: 'info', stream });
    const id = `<${'m'.repeat(1_500_000)}@example.net>`;
    log.info(`queued ${id}`, { messageId: id, to: [id] });
    expect(lines).to.have.length(1);
    const [line] = lines;
    const clipped = `<${'m'.repeat(2047)}… [${id.length - 2048} more characters]`;
    expect(line!.messageId).to.equal(clipped);
    expect(line!.to).to.deep.equal([clipped]);
    expect(String(line!.message)).to.have.length.below(2100);
    expect(JSON.stringify(line)).to.have.length.below(8000);
  });
});
