// The post thread's worker (see post-thread.ts): posts each body it is handed with its own
// axios instance, keep-alive agents and time limits, and answers with the exchange; given the
// mapping, it also runs whole delivery jobs (delivery-job.ts): parse, map, post.
import http from 'node:http';
import https from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';
import {
  AGENT_OPTIONS,
  Deadlines,
  exchange,
  postBody,
} from '../http-exchange.js';
import { createHttp, HttpPoster } from '../http-poster.js';
import { postFitted } from '../fit-body.js';
import { SenderAuthenticator } from '../../auth/sender-auth.js';
import { runJob } from './delivery-job.js';
import { serializePayload } from '../payload-stream.js';
import type {
  JobRequest,
  PostAnswer,
  PostRequest,
  PostWorkerData,
} from './messages.js';

const { config, mapping, proxyConfigured, auth } = workerData as PostWorkerData;
// one for the thread: its DNS cache serves every job the thread runs
const authenticator = auth && new SenderAuthenticator(auth);
const client = new HttpPoster(
  createHttp(
    config,
    new http.Agent(AGENT_OPTIONS),
    new https.Agent(AGENT_OPTIONS),
    { proxyConfigured },
  ),
);
const deadlines = new Deadlines(config.timeoutMs);
const fitting = {
  limit: config.maxBodyBytes,
  format: mapping?.content === 'text' ? ('text' as const) : ('html' as const),
};
const port = parentPort!;

port.on('message', (request: PostRequest | JobRequest) => {
  if ('job' in request) {
    // (the main thread sends jobs only to a thread made with the mapping)
    void runJob(
      request.job,
      mapping!,
      (payload, key) =>
        // fitted to api.maxBodyBytes, and smaller again after a 413 (fit-body.ts)
        postFitted(payload, fitting, body =>
          postBody(serializePayload(body), key, (bytes, headers) =>
            exchange(client, deadlines, config.url, bytes, headers),
          ),
        ),
      authenticator,
    ).then(answer => port.postMessage({ id: request.id, ...answer }));
    return;
  }
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
