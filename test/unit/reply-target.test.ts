// The reply target: only an id that looks like id-left@id-right names the message replied to.
import { expect } from 'chai';
import { isThreadableId } from '../../src/mail/message-id.js';
import { messageIds } from '../../src/map/to-api-payload.js';

describe('isThreadableId', () => {
  const rows: Array<[string, boolean]> = [
    ['<baz@bar.net>', true],
    ['<105647271315.NCV17523@x263.net>', true],
    ['<a@b>', true],
    ['<a@b@c>', true],
    ['<"quoted local"@example.com>', false],
    ['<invalid.>', false],
    ['<11107978796724623>', false],
    ['<@bar.net>', false],
    ['<foo@>', false],
    ['<>', false],
    ['baz@bar.net', false],
    ['<baz@bar.net> <x@y>', false],
  ];
  for (const [id, threadable] of rows) {
    it(`${id} -> ${threadable}`, () => {
      expect(isThreadableId(id)).to.equal(threadable);
    });
  }
});

describe('messageIds: the reply target skips an id that is no id', () => {
  const rows: Array<{
    title: string;
    inReplyTo?: string;
    references?: string[];
    replyTo: string | undefined;
  }> = [
    {
      title:
        'a fold fragment at the end of References (mailparser splits the broken id)',
      references: ['<foo@bar.net>', '<baz@bar.net>,>', '<invalid.>'],
      replyTo: '<baz@bar.net>',
    },
    {
      title: 'an In-Reply-To without an @: the last References id',
      inReplyTo: '<invalid.>',
      references: ['<r1@example.com>'],
      replyTo: '<r1@example.com>',
    },
    {
      title: 'the first good In-Reply-To id',
      inReplyTo: '<bad> <p1@example.com>',
      replyTo: '<p1@example.com>',
    },
    {
      title: 'nothing usable: no reply target',
      inReplyTo: '<bad.>',
      references: ['<also-bad>'],
      replyTo: undefined,
    },
  ];
  for (const row of rows) {
    it(row.title, () => {
      const ids = messageIds({
        messageId: '<m@example.com>',
        inReplyTo: row.inReplyTo,
        references: row.references ?? [],
        digest: '0'.repeat(64),
      });
      expect(ids.replyTo).to.equal(row.replyTo);
    });
  }

  it('the message id itself is kept as written, @ or not (it is not a reply target)', () => {
    const ids = messageIds({
      messageId: '<11107978796724623>',
      references: [],
      digest: '0'.repeat(64),
    });
    expect(ids.messageId).to.equal('<11107978796724623>');
  });
});
