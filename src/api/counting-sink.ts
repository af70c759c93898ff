// A sink decorator that counts each body in mailbridge_api_posts_total by result.
import { isTemporary } from '../errors/bridge-error.js';
import type { Metrics } from '../observability/metrics.js';
import type { PayloadSink } from '../pipeline/payload-sink.js';

/** The sink, counting each body in `mailbridge_api_posts_total` by result. */
export function countPosts(sink: PayloadSink, metrics: Metrics): PayloadSink {
  /** counts one body: taken (no failure) or not */
  const count = (failure?: unknown) =>
    metrics.posts.inc({
      result:
        failure === undefined
          ? sink.kind === 'dry-run'
            ? 'dry_run'
            : 'delivered'
          : isTemporary(failure)
            ? 'temporary'
            : 'permanent',
    });
  return {
    kind: sink.kind,
    ready: sink.ready && (() => sink.ready!()),
    async send(payload, context) {
      let receipt;
      try {
        receipt = await sink.send(payload, context);
      } catch (err) {
        count(err);
        throw err;
      }
      count();
      return receipt;
    },
    deliverJob:
      sink.deliverJob &&
      ((job, queueId) => {
        const running = sink.deliverJob!(job, queueId);
        return running?.then(result => {
          if (result.kind !== 'posted') return result;
          for (const { failure, duplicate } of result.routes) {
            if (!duplicate) count(failure);
          }
          return result;
        });
      }),
    setToken: sink.setToken && (token => sink.setToken!(token)),
    close: () => sink.close(),
  };
}
