// The post thread's worker (see post-thread.ts): posts each body it is handed with its own
// axios instance, keep-alive agents and time limits, and answers with the exchange.
import http from 'node:http';
import https from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';
import type { ApiConfig } from '../config/schema.js';
import {
  AGENT_OPTIONS,
  createHttp,
  Deadlines,
  exchange,
} from './api-client.js';
import type { PostAnswer, PostRequest } from './post-thread.js';

const { config } = workerData as { config: ApiConfig };
const client = createHttp(
  config,
  new http.Agent(AGENT_OPTIONS),
  new https.Agent(AGENT_OPTIONS),
);
const deadlines = new Deadlines(config.timeoutMs);
const port = parentPort!;

port.on('message', (request: PostRequest) => {
  const { body } = request;
  void exchange(
    client,
    deadlines,
    request.url,
    Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    request.headers,
  ).then(result => {
    const answer: PostAnswer = { id: request.id, ...result };
    port.postMessage(answer);
  });
});

port.postMessage('ready');
