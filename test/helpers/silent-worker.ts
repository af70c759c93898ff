// A post-thread worker for tests that says it is ready, then takes every request and never
// answers: what the main thread's watchdog is for.
import { Worker } from 'node:worker_threads';

export function silentWorker(workerData: unknown): Worker {
  return new Worker(
    "const { parentPort } = require('node:worker_threads');" +
      "parentPort.on('message', () => {}); parentPort.postMessage('ready');",
    { eval: true, workerData },
  );
}
