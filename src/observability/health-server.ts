// The HTTP side door: /healthz (alive), /readyz (accepting mail), /status (delivery, spool as
// JSON), /metrics (Prometheus).
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthServerOptions {
  host: string;
  port: number;
  /** the Prometheus registry (or, in a cluster primary, the workers' aggregate) */
  metrics: MetricsSource;
  /**
   * Why the daemon cannot accept mail (shutting down, workers starting), or null when it can. A
   * paused delivery does not make it unready: mail is still taken and kept (see /status).
   */
  notReadyReason: () => string | null | Promise<string | null>;
  /** What /status serves as JSON: delivery paused and why, spool counts */
  status: () => Promise<object>;
  /** told of errors once the listener runs (EMFILE on accept, ...), which must not crash us */
  onError?: (err: Error) => void;
}

/** What /metrics serves: a prom-client Registry fits. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Starts the health and metrics listener; resolves once it listens. */
export async function startHealthServer(
  options: HealthServerOptions,
): Promise<{ server: Server; port: number }> {
  // an endpoint whose answer failed: 500, and the error said where errors go
  const failed = (res: ServerResponse) => (err: unknown) => {
    options.onError?.(err instanceof Error ? err : new Error(String(err)));
    res.writeHead(500).end();
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      Promise.resolve(options.notReadyReason()).then(
        reason =>
          res
            .writeHead(reason ? 503 : 200, { 'content-type': 'text/plain' })
            .end(reason ? `not ready: ${reason}\n` : 'ready\n'),
        failed(res),
      );
    } else if (path === '/status') {
      options
        .status()
        .then(
          body =>
            res
              .writeHead(200, { 'content-type': 'application/json' })
              .end(`${JSON.stringify(body)}\n`),
          failed(res),
        );
    } else if (path === '/metrics') {
      options.metrics.metrics().then(
        body =>
          res
            .writeHead(200, {
              'content-type': options.metrics.contentType,
            })
            .end(body),
        failed(res),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      server.on('error', err => options.onError?.(err));
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
