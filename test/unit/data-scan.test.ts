// smtp/data-scan.ts: the DATA reader that searches by indexOf gives what smtp-server's own gives,
// byte for byte, whatever the client sends and however its bytes are cut into segments.
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { createRng, type Rng } from '../../fuzz/rng.js';
import { feedDataStream, followsLibrary } from '../../src/smtp/data-scan.js';
import { HalfCloseSmtpServer } from '../../src/smtp/half-close-server.js';

/**
 * What a parser makes of `pieces`, written one after the other: each command line, and each
 * message's bytes once its DATA ends (with the parser's byte count). DATA switches to data mode
 * as smtp-server's connection does; the message's end lets the parser go on.
 */
async function transcript(
  pieces: Buffer[],
  ours: boolean,
  reader: Reader = 'reads',
): Promise<string[]> {
  const parser = new SMTPStream();
  if (ours) parser._feedDataStream = feedDataStream;
  const seen: string[] = [];
  parser.oncommand = (command, next) => {
    const line = command.toString('latin1');
    seen.push(`command ${JSON.stringify(line)}`);
    if (line === 'DATA') {
      const data = parser.startDataMode();
      if (reader === 'destroys') {
        // the stream fills first; the reader then gives up on the message (as a handler that
        // fails does) and lets the parser go on at once: the rest of the message is skipped
        setImmediate(() => {
          data.destroy();
          seen.push(`destroyed after ${parser.dataBytes}`);
          parser.continue();
        });
        next?.();
        return;
      }
      const parts: Buffer[] = [];
      const read = () => data.on('data', (part: Buffer) => parts.push(part));
      // late: the stream fills first, and the parser waits for its drain
      if (reader === 'late') setImmediate(read);
      else read();
      data.on('end', () => {
        const body = Buffer.concat(parts).toString('latin1');
        seen.push(`message ${JSON.stringify(body)} ${parser.dataBytes}`);
        parser.continue();
      });
    }
    next?.();
  };
  // one segment at a time, as from a socket: the next once the parser has taken the last
  for (const piece of pieces) {
    await new Promise(taken => parser.write(piece, taken));
  }
  parser.end();
  await once(parser, 'finish');
  return seen;
}

/**
 * How the message's stream is read: at once, late (the parser waits for a drain), or not at
 * all and destroyed (the parser, waiting for a drain that never comes, must go on at its close).
 */
type Reader = 'reads' | 'late' | 'destroys';

/** `bytes` cut at `cuts` (offsets, any order). */
function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts)].filter(c => c > 0 && c < bytes.length);
  at.sort((a, b) => a - b);
  return [0, ...at].map((from, n) =>
    bytes.subarray(from, at[n] ?? bytes.length),
  );
}

/** Both parsers on the same pieces: the transcripts are the same. */
async function same(
  pieces: Buffer[],
  reader: Reader = 'reads',
): Promise<string[]> {
  const library = await transcript(pieces, false, reader);
  const ours = await transcript(pieces, true, reader);
  expect(ours).to.deep.equal(library);
  return ours;
}

/** DATA, a message of about 200 KB (more than a stream buffers before it asks for a drain), `after`. */
function longMessage(after: string): Buffer {
  return Buffer.from(
    `DATA\r\n${'w'.repeat(70)}\r\n`.padEnd(200_000, 'v') + `\r\n.\r\n${after}`,
    'latin1',
  );
}

/** Bytes where line-leading dots, bare CR and LF, and terminators are common. */
function dotty(rng: Rng, tokens: number): string {
  const parts = [
    '.',
    '..',
    '\r',
    '\n',
    '\r\n',
    '.\r\n',
    '\r\n.',
    'ab',
    'x.y',
    ' ',
  ];
  let out = '';
  for (let n = 0; n < tokens; n++) out += rng.pick(parts);
  return out;
}

describe('smtp/data-scan: the DATA reader by indexOf', () => {
  const cases: Array<{
    name: string;
    wire: string;
    cuts: number[];
    message: string;
  }> = [
    {
      name: 'plain lines',
      wire: 'a\r\nb\r\n.\r\n',
      cuts: [],
      message: 'a\r\nb\r\n',
    },
    {
      name: 'an escape dot removed',
      wire: 'a\r\n..b\r\n.\r\n',
      cuts: [],
      message: 'a\r\n.b\r\n',
    },
    {
      name: 'an escape dot first',
      wire: '..b\r\n.\r\n',
      cuts: [],
      message: '.b\r\n',
    },
    {
      name: 'an escape dot first, alone in its segment',
      wire: '..\r\n.\r\n',
      cuts: [1],
      message: '.\r\n',
    },
    { name: 'an empty message', wire: '.\r\n', cuts: [], message: '' },
    {
      name: 'the terminator cut in every place',
      wire: 'hello\r\n.\r\n',
      cuts: [5, 6, 7, 8, 9],
      message: 'hello\r\n',
    },
    {
      name: 'bare LF dot LF is content, not the end',
      wire: 'a\n.\nb\r\n.\r\n',
      cuts: [],
      message: 'a\n.\nb\r\n',
    },
    {
      name: 'CR dot CR is content, not the end',
      wire: 'a\r.\rb\r\n.\r\n',
      cuts: [2],
      message: 'a\r.\rb\r\n',
    },
    {
      name: 'many escapes in one segment',
      wire: `${'..x\r\n'.repeat(50)}.\r\n`,
      cuts: [],
      message: '.x\r\n'.repeat(50),
    },
  ];
  for (const c of cases) {
    it(`${c.name}: as the library, and the expected message`, async () => {
      const wire = Buffer.from(`DATA\r\n${c.wire}QUIT\r\n`, 'latin1');
      const seen = await same(
        cut(
          wire,
          c.cuts.map(at => at + 6),
        ),
      );
      expect(seen).to.deep.equal([
        'command "DATA"',
        `message ${JSON.stringify(c.message)} ${c.message.length}`,
        'command "QUIT"',
      ]);
    });
  }

  it('what the client pipelines after the dot is read as commands, as by the library', async () => {
    // NB! the second message's bytes come in a later segment, as after the 354 they wait for.
    // In one segment, with every command between answered at once (as here, not in the
    // daemon, whose MAIL and RCPT answer later), smtp-server 3.21.7 would stall: continue()
    // clears the callback the second message's end has just set
    const wire = Buffer.from(
      'DATA\r\nx\r\n.\r\nNOOP\r\nDATA\r\n..\r\n.\r\nQUIT\r\n',
    );
    const seen = await same(cut(wire, [9, 10, 11, 24]));
    expect(seen).to.deep.equal([
      'command "DATA"',
      'message "x\\r\\n" 3',
      'command "NOOP"',
      'command "DATA"',
      'message ".\\r\\n" 3',
      'command "QUIT"',
    ]);
  });

  it('2,000 random transcripts, cut at random: the same as the library, byte for byte', async () => {
    const rng = createRng(0x5eed);
    for (let n = 0; n < 2000; n++) {
      const text = `DATA\r\n${dotty(rng, rng.int(0, 80))}\r\n.\r\nRSET\r\nQUIT\r\n`;
      const wire = Buffer.from(text, 'latin1');
      const cuts = Array.from({ length: rng.int(0, 12) }, () =>
        rng.int(1, wire.length - 1),
      );
      await same(cut(wire, cuts));
    }
  });

  it('a large message in 64 KiB segments: the same as the library', async () => {
    const rng = createRng(7);
    const lines = Array.from({ length: 5000 }, () =>
      rng.chance(0.05)
        ? `..${'y'.repeat(rng.int(0, 70))}`
        : 'z'.repeat(rng.int(0, 76)),
    );
    const wire = Buffer.from(
      `DATA\r\n${lines.join('\r\n')}\r\n.\r\nQUIT\r\n`,
      'latin1',
    );
    const cuts = Array.from(
      { length: Math.floor(wire.length / 65536) },
      (_, k) => (k + 1) * 65536,
    );
    for (const reader of ['reads', 'late'] as const) {
      const seen = await same(cut(wire, cuts), reader);
      expect(seen).to.have.length(3);
      expect(seen[1]).to.have.length.above(150_000);
    }
  });

  it('a reader that reads late: the parser waits for the drain, and gives what the library gives', async () => {
    const wire = longMessage('QUIT\r\n');
    const seen = await same(
      [wire.subarray(0, 100_000), wire.subarray(100_000)],
      'late',
    );
    expect(seen).to.have.length(3);
    expect(seen[1]).to.have.length.above(150_000);
  });

  it('a reader that destroys the stream while the parser waits for its drain: the parser goes on at its close, as the library', async () => {
    const wire = longMessage('RSET\r\nQUIT\r\n');
    const seen = await same(cut(wire, [50_000, 100_000, 150_000]), 'destroys');
    // where the parser stood at the destruction depends on Node's stream buffering; that it
    // stood there on both readers, and read the commands after the message, does not
    expect(seen).to.have.length(4);
    expect(seen[1]).to.match(/^destroyed after \d+$/);
    expect(seen.slice(2)).to.deep.equal(['command "RSET"', 'command "QUIT"']);
  });

  it('follows the installed library: its reader is the one data-scan.ts was written from', () => {
    expect(followsLibrary).to.equal(true);
  });

  it("is the reader of the daemon's connections", async () => {
    const server = new HalfCloseSmtpServer({
      logger: false,
      disabledCommands: ['AUTH'],
    });
    await new Promise<void>(listening =>
      server.listen(0, '127.0.0.1', listening),
    );
    const { port } = server.server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    try {
      await once(socket, 'data');
      const [connection] = [...server.connections] as Array<{
        _parser: SMTPStream;
      }>;
      expect(connection?._parser._feedDataStream).to.equal(feedDataStream);
    } finally {
      socket.destroy();
      await new Promise<void>(closed => server.close(closed));
    }
  });
});
