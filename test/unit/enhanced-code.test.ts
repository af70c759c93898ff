// A reply text's own enhanced status code is kept (smtp/enhanced-code.ts): table-driven.
import { expect } from 'chai';
import { enhancedContext } from '../../src/smtp/enhanced-code.js';

describe('a reply text with its own enhanced status code', () => {
  const cases: Array<
    [
      code: number,
      data: string | string[] | undefined,
      context: string | false | undefined,
      expected: string | false | undefined,
    ]
  > = [
    // its own code of the same class: smtp-server adds none
    [550, '5.7.1 Sender authentication failed', undefined, false],
    [451, '4.7.0 Try again', 'DATA', false],
    [554, '5.7.1 Access denied', false, false],
    // no code of its own, or of another class, or not at the start: as it was
    [550, 'No such user here', undefined, undefined],
    [550, 'Message 5.7.1 inside', 'RCPT', 'RCPT'],
    [451, '5.7.1 mismatched class', undefined, undefined],
    [250, '2.6.0x not a code', 'DATA_OK', 'DATA_OK'],
    [250, ['2.0.0 multi', 'line'], undefined, undefined],
    [221, undefined, undefined, undefined],
  ];
  for (const [code, data, context, expected] of cases) {
    it(`${code} ${JSON.stringify(data)} (${String(context)})`, () =>
      expect(enhancedContext(code, data, context)).to.equal(expected));
  }
});
