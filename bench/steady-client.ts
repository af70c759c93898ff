// A steady SMTP load for the latency row of the benchmark: `sessions` connections, each sending
// its messages one at a time with a random pause of 0..maxPauseMs before each. Prints one JSON
// line: the messages sent and the client-side times from the final dot to the 250, in ms.
import { connect } from 'node:net';

const [port, sessions, perSession, maxPauseMs, bytes] = process.argv
  .slice(2)
  .map(Number) as [number, number, number, number, number];

const line = `${'x'.repeat(76)}\r\n`;
const body = line.repeat(Math.max(1, Math.round(bytes / line.length)));

async function session(index: number, times: number[]): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  socket.setNoDelay(true);
  let pending = '';
  const waiters: Array<(reply: string) => void> = [];
  socket.on('data', (chunk: string) => {
    pending += chunk;
    for (
      let m = /^\d{3} [^\n]*\n/m.exec(pending);
      m;
      m = /^\d{3} [^\n]*\n/m.exec(pending)
    ) {
      pending = pending.slice(m.index + m[0].length);
      waiters.shift()?.(m[0]);
    }
  });
  const reply = () => new Promise<string>(resolve => waiters.push(resolve));
  const expect = async (code: string) => {
    const got = await reply();
    if (!got.startsWith(code)) throw new Error(`expected ${code}, got ${got}`);
  };
  await expect('220');
  socket.write('EHLO bench.example\r\n');
  await expect('250');
  for (let i = 0; i < perSession; i++) {
    await new Promise(resolve =>
      setTimeout(resolve, Math.random() * maxPauseMs),
    );
    socket.write('MAIL FROM:<bench@example.net>\r\n');
    await expect('250');
    socket.write('RCPT TO:<support@example.com>\r\n');
    await expect('250');
    socket.write('DATA\r\n');
    await expect('354');
    socket.write(
      `From: <bench@example.net>\r\nTo: <support@example.com>\r\nSubject: steady\r\n` +
        `Message-ID: <steady.${index}.${i}.${Date.now()}@bench.example>\r\n\r\n${body}`,
    );
    const sent = performance.now();
    socket.write('.\r\n');
    await expect('250');
    times.push(performance.now() - sent);
  }
  socket.end('QUIT\r\n');
}

const times: number[] = [];
await Promise.all(
  Array.from({ length: sessions }, (_, i) => session(i, times)),
);
process.stdout.write(`${JSON.stringify({ sent: times.length, times })}\n`);
