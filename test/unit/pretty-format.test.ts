// log.format: pretty: the line formatPretty makes of one entry, and the root logger's choice of
// format and colour (JSON by default; colour only on a terminal).
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/observability/logger.js';
import { formatPretty } from '../../src/observability/pretty-format.js';

const TIME = '2026-12-07T08:00:00.000Z';
const ESC = '\u001b';

/** A stream that keeps what is written; `isTTY` as a terminal's stdout says it. */
function capture(isTTY: boolean): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  Object.assign(stream, { isTTY });
  return { stream, text: () => text };
}

describe('pretty log format', () => {
  describe('formatPretty', () => {
    const plain = { colour: false };

    it('writes time, level, message, then the fields as key=value in order', () => {
      const line = formatPretty(
        {
          level: 'info',
          message: 'recipient rejected: no route',
          timestamp: TIME,
          sessionId: 'abc123',
          remoteAddress: '127.0.0.1',
          code: 550,
          secure: false,
        },
        plain,
      );
      expect(line).to.equal(
        `${TIME} info  recipient rejected: no route sessionId=abc123 remoteAddress=127.0.0.1 code=550 secure=false`,
      );
    });

    it('pads the level so that messages line up', () => {
      const at = (level: string) =>
        formatPretty({ level, message: 'm', timestamp: TIME }, plain).indexOf(
          ' m',
        );
      expect(at('warn')).to.equal(at('error'));
      expect(at('info')).to.equal(at('debug'));
      expect(at('info')).to.equal(at('error'));
    });

    const values: Array<[name: string, value: unknown, shown: string]> = [
      ['a plain word', 'x@example.com', 'x@example.com'],
      ['an empty string', '', '""'],
      ['a string with spaces', 'try again later', '"try again later"'],
      ['a string with a quote', 'say "hi"', '"say \\"hi\\""'],
      ['a string with =', 'a=b', '"a=b"'],
      ['CR LF (a forged line)', 'x\r\nlevel=error', '"x\\r\\nlevel=error"'],
      ['null', null, 'null'],
      ['a number', 42.5, '42.5'],
      ['an array', ['a@b', 'c@d'], '["a@b","c@d"]'],
      ['an object', { delay: 86400 }, '{"delay":86400}'],
    ];
    for (const [name, value, shown] of values) {
      it(`shows ${name} as ${shown}`, () => {
        const line = formatPretty(
          { level: 'info', message: 'm', timestamp: TIME, v: value },
          plain,
        );
        expect(line).to.equal(`${TIME} info  m v=${shown}`);
      });
    }

    it('leaves undefined fields out', () => {
      const line = formatPretty(
        { level: 'info', message: 'm', timestamp: TIME, helo: undefined },
        plain,
      );
      expect(line).to.equal(`${TIME} info  m`);
    });

    it('keeps one event on one line: control characters in the message are escaped', () => {
      const line = formatPretty(
        { level: 'error', message: 'bad\nthing\u001b[2J', timestamp: TIME },
        plain,
      );
      expect(line).to.equal(`${TIME} error bad\\nthing\\u001b[2J`);
    });

    it('survives a value that cannot be serialized', () => {
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      const line = formatPretty(
        { level: 'info', message: 'm', timestamp: TIME, cycle },
        plain,
      );
      expect(line).to.equal(`${TIME} info  m cycle="[unserializable]"`);
    });

    it('colours the level only when asked', () => {
      const entry = { level: 'warn', message: 'm', timestamp: TIME };
      expect(formatPretty(entry, plain)).not.to.include(ESC);
      expect(formatPretty(entry, { colour: true })).to.equal(
        `${TIME} ${ESC}[33mwarn ${ESC}[0m m`,
      );
    });
  });

  describe('createLogger', () => {
    it('writes JSON lines by default', () => {
      const out = capture(false);
      createLogger({ level: 'info', stream: out.stream }).info('hello', {
        code: 550,
      });
      const line = JSON.parse(out.text()) as Record<string, unknown>;
      expect(line).to.include({ level: 'info', message: 'hello', code: 550 });
    });

    it('format pretty, not a terminal: one plain line an event, no colour', () => {
      const out = capture(false);
      const log = createLogger({
        level: 'info',
        format: 'pretty',
        stream: out.stream,
      });
      log.child({ sessionId: 's1' }).info('session refused', { code: 554 });
      log.debug('not shown');
      const lines = out.text().split('\n').filter(Boolean);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info {2}session refused /,
      );
      expect(lines[0]).to.include('sessionId=s1').and.include('code=554');
      expect(out.text()).not.to.include(ESC);
    });

    it('format pretty on a terminal: the level coloured', () => {
      const out = capture(true);
      createLogger({
        level: 'info',
        format: 'pretty',
        stream: out.stream,
      }).warn('paused');
      expect(out.text()).to.include(`${ESC}[33mwarn ${ESC}[0m paused`);
    });

    it('the shipped configuration says json', () => {
      expect(loadConfig({ env: { NODE_ENV: 'test' } }).log.format).to.equal(
        'json',
      );
    });
  });
});
