// The fingerprint dedupe records match on: the same message read the same way along any path,
// a different message (another sender or body) never the same.
import { expect } from 'chai';
import {
  BodyDigest,
  findFromAddress,
  fingerprint,
} from '../../src/mail/fingerprint.js';

/** The body digest of `raw`, fed in pieces of `size` bytes (the whole at once without). */
function digestOf(raw: string, size?: number): string {
  const bytes = Buffer.from(raw, 'latin1');
  const digest = new BodyDigest();
  const step = size ?? Math.max(1, bytes.length);
  for (let i = 0; i < bytes.length; i += step) {
    digest.update(bytes.subarray(i, i + step));
  }
  return digest.digest();
}

const BASE =
  'From: Jane <jane@example.net>\r\nMessage-ID: <a@example.net>\r\n\r\nHello  there,\r\n\r\nsee you.\r\n';

describe('BodyDigest', () => {
  const same: Array<[string, string]> = [
    [
      'another header block (a relay added Received)',
      'Received: from relay.example.org\r\n\tby mx.example.com\r\n' + BASE,
    ],
    ['bare LF line ends', BASE.replace(/\r\n/g, '\n')],
    [
      'trailing whitespace on lines',
      BASE.replace('there,\r\n', 'there, \t\r\n'),
    ],
    ['empty lines added at the end', `${BASE}\r\n\r\n \r\n`],
    ['no final line end', BASE.slice(0, -2)],
  ];
  for (const [name, raw] of same) {
    it(`the same digest with ${name}`, () => {
      expect(digestOf(raw)).to.equal(digestOf(BASE));
    });
  }

  const different: Array<[string, string]> = [
    ['another word', BASE.replace('see you', 'see them')],
    ['a line break moved', BASE.replace('there,\r\n\r\nsee', 'there,\r\nsee')],
    ['an empty line inside', BASE.replace('see you.', '\r\nsee you.')],
    ['space where there was none', BASE.replace('see you', 'se e you')],
    // inside a line every byte counts: relays rewrite line ends, not words
    ['a run of spaces made one', BASE.replace('Hello  there', 'Hello there')],
    ['a tab for a space', BASE.replace('Hello  there', 'Hello\tthere')],
    ['an empty body', BASE.slice(0, BASE.indexOf('\r\n\r\n') + 4)],
  ];
  for (const [name, raw] of different) {
    it(`another digest with ${name}`, () => {
      expect(digestOf(raw)).not.to.equal(digestOf(BASE));
    });
  }

  it('does not depend on how the bytes were cut into chunks', () => {
    const long = `${BASE}${'word  \t'.repeat(400)}\r\n\r\nend \r\n\r\n`;
    const whole = digestOf(long);
    for (const size of [1, 2, 3, 7, 64, 1000, 1500]) {
      expect(digestOf(long, size), `chunks of ${size}`).to.equal(whole);
    }
  });

  it('a message without a body, or without headers, has a digest', () => {
    expect(digestOf('Subject: x\r\n')).to.equal(digestOf('Subject: y\r\n\r\n'));
    expect(digestOf('\r\nbody\r\n')).to.equal(digestOf('X: 1\r\n\r\nbody\r\n'));
  });

  it('reads a megabyte of whitespace without a line end in linear time', () => {
    // the lookahead it used to strip trailing whitespace with was quadratic: 16 s per 64 KiB
    const digest = new BodyDigest();
    digest.update(Buffer.from('X: 1\r\n\r\n'));
    const chunk = Buffer.from(' \t'.repeat(32 * 1024), 'latin1');
    for (let i = 0; i < 16; i++) digest.update(chunk);
    digest.update(Buffer.from('x\r\n'));
    expect(digest.digest()).to.match(/^[A-Za-z0-9_-]{43}$/);
  });

  it('strips whitespace at line ends only, as before', () => {
    const rows: Array<[string, string]> = [
      ['a \t\r\nb\t\nc  d \r \r\n', 'a\r\nb\r\nc  d \r\r\n'],
      [' \r\n\t\n \t \r', '\r\n\r\n \t \r'],
    ];
    for (const [raw, canonical] of rows) {
      expect(digestOf(`X: 1\r\n\r\n${raw}y\r\n`)).to.equal(
        digestOf(`X: 1\r\n\r\n${canonical}y\r\n`),
      );
    }
  });

  it('keeps memory bounded on a line that never ends', () => {
    const digest = new BodyDigest();
    digest.update(Buffer.from('X: 1\r\n\r\n'));
    const chunk = Buffer.alloc(64 * 1024, 'a');
    for (let i = 0; i < 64; i++) digest.update(chunk);
    expect(
      (digest as unknown as { partial: string }).partial.length,
    ).to.be.at.most(1024);
    expect(digest.digest()).to.match(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('findFromAddress', () => {
  const rows: Array<[string, string]> = [
    ['From: Jane <Jane@Example.NET>', 'jane@example.net'],
    ['from:jane@example.net', 'jane@example.net'],
    ['From: "Doe, Jane" <jane@example.net> (work)', 'jane@example.net'],
    ['From: jane@example.net (Jane Doe)', 'jane@example.net'],
    ['Subject: no sender', ''],
    ['From: undisclosed', 'undisclosed'],
    ['From: a@b@c (x)', 'a@b@c'],
    ['From: @x, y@, <z>, w@v', 'w@v'],
    ['From: "@" a@@b', 'a@@b'],
  ];
  for (const [headers, expected] of rows) {
    it(`${JSON.stringify(headers)} -> ${JSON.stringify(expected)}`, () => {
      expect(findFromAddress(headers)).to.equal(expected);
    });
  }

  it('reads a From of 1 MiB without an @ in linear time', () => {
    // a pattern it used to use tried every start of the word: 20 s for 60 KB of "="
    const value = '='.repeat(1024 * 1024);
    expect(findFromAddress(`From: ${value}`)).to.equal(value);
  });
});

describe('fingerprint', () => {
  const headers =
    'From: Jane <jane@example.net>\r\nMessage-ID: <a@example.net>';
  it('differs by sender and by body, and is 22 characters', () => {
    const a = fingerprint(headers, 'digest-1', '<a@example.net>');
    expect(a).to.match(/^[A-Za-z0-9_-]{22}$/);
    expect(fingerprint(headers, 'digest-1', '<a@example.net>')).to.equal(a);
    const mallory = headers.replace('jane@example.net', 'mallory@example.org');
    expect(fingerprint(mallory, 'digest-1', '<a@example.net>')).not.to.equal(a);
    expect(fingerprint(headers, 'digest-2', '<a@example.net>')).not.to.equal(a);
  });

  it('with a Message-ID, other headers (a relay trace) do not change it', () => {
    const relayed = `Received: from relay.example.org\r\n${headers}`;
    expect(fingerprint(relayed, 'd', '<a@example.net>')).to.equal(
      fingerprint(headers, 'd', '<a@example.net>'),
    );
  });

  it('without a Message-ID, the whole header block counts: another subject is another message', () => {
    const one = 'From: jane@example.net\r\nSubject: one';
    const two = 'From: jane@example.net\r\nSubject: two';
    expect(fingerprint(one, 'd', null)).not.to.equal(
      fingerprint(two, 'd', null),
    );
    expect(fingerprint(one, 'd', null)).to.equal(fingerprint(one, 'd', null));
  });
});
