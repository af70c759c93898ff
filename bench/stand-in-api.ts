// Benchmark stand-in for the API: answers 204 to every POST, counts them; GET /count reads it.
// STAND_IN_KEEP_LAST=1 also keeps the last POST's body, which GET /last returns as it came.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const keepLast = process.env.STAND_IN_KEEP_LAST === '1';
let posts = 0;
let bytes = 0;
let last = Buffer.alloc(0);
const server = createServer((req, res) => {
  if (req.method === 'GET') {
    if (req.url === '/last') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(last);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ posts, bytes }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (keepLast) chunks.push(chunk);
  });
  req.on('end', () => {
    posts++;
    if (keepLast) last = Buffer.concat(chunks);
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
