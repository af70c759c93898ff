// A stand-in for the helpdesk API, for docker-compose.yml and trying mailbridge out: answers
// 204 to every POST and prints one JSON line per request (method, path, whether a bearer token
// came, the body). No dependencies: `node examples/stand-in-api.mjs` (PORT, default 8080; HOST,
// default 0.0.0.0).
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '0.0.0.0';

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', chunk => chunks.push(chunk));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    let body = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: printed as it came
    }
    const line = {
      method: req.method,
      path: req.url,
      bearer: /^Bearer \S+/.test(req.headers.authorization ?? ''),
      idempotencyKey: req.headers['idempotency-key'],
      body,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    res.writeHead(req.method === 'POST' ? 204 : 200).end();
  });
});
server.listen(port, host, () => {
  const { port: bound } = server.address();
  process.stdout.write(
    `${JSON.stringify({ listening: `${host}:${bound}` })}\n`,
  );
});
// docker stop: end at once
process.on('SIGTERM', () => server.close(() => process.exit(0)));
