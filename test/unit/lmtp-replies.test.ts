// Unit table for lmtpReplies: one reply per accepted RCPT command (RFC 2033 4.2).
import { expect } from 'chai';
import { lmtpReplies, type Reply } from '../../src/smtp/lmtp-replies.js';

const ok = 'OK: queued as X';
const later = Object.assign(new Error('Temporary failure'), {
  responseCode: 451,
});
const never = Object.assign(new Error('Message rejected'), {
  responseCode: 554,
});

/** A reply as the client would read it: the text, or code and text of a refusal. */
function shown(reply: Reply): string {
  return typeof reply === 'string'
    ? `250 ${reply}`
    : `${(reply as Error & { responseCode: number }).responseCode} ${reply.message}`;
}

describe('lmtpReplies', () => {
  const cases: Array<{
    title: string;
    result: Reply | Reply[];
    commands: string[];
    envelope: string[];
    expected: string[];
  }> = [
    {
      title: 'one reply for all: repeated once per command',
      result: ok,
      commands: ['a@x', 'b@x'],
      envelope: ['a@x', 'b@x'],
      expected: [`250 ${ok}`, `250 ${ok}`],
    },
    {
      title: 'a recipient given twice gets two replies',
      result: ok,
      commands: ['a@x', 'A@X'],
      envelope: ['a@x'],
      expected: [`250 ${ok}`, `250 ${ok}`],
    },
    {
      title: 'a refusal for all, repeated',
      result: later,
      commands: ['a@x', 'b@x', 'a@x'],
      envelope: ['a@x', 'b@x'],
      expected: [
        '451 Temporary failure',
        '451 Temporary failure',
        '451 Temporary failure',
      ],
    },
    {
      title:
        'per recipient, in command order, a repeat found again whatever its case',
      result: [ok, later, never],
      commands: ['a@x', 'b@x', 'A@x', 'c@x'],
      envelope: ['a@x', 'b@x', 'c@x'],
      expected: [
        `250 ${ok}`,
        '451 Temporary failure',
        `250 ${ok}`,
        '554 Message rejected',
      ],
    },
    {
      title:
        'a command whose recipient is not in the envelope is told to retry, not 250',
      result: [ok],
      commands: ['a@x', 'ghost@x'],
      envelope: ['a@x'],
      expected: [`250 ${ok}`, '451 Temporary failure, please try again later'],
    },
    {
      title: 'fewer replies than envelope recipients: the missing one retries',
      result: [ok],
      commands: ['a@x', 'b@x'],
      envelope: ['a@x', 'b@x'],
      expected: [`250 ${ok}`, '451 Temporary failure, please try again later'],
    },
  ];
  for (const { title, result, commands, envelope, expected } of cases) {
    it(title, () => {
      expect(lmtpReplies(result, commands, envelope).map(shown)).to.deep.equal(
        expected,
      );
    });
  }
});
