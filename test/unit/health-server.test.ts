// The health listener reports errors after it started instead of crashing the daemon.
import { expect } from 'chai';
import { startHealthServer } from '../../src/observability/health-server.js';
import { createMetrics } from '../../src/observability/metrics.js';

describe('startHealthServer', () => {
  // regression: only a once('error') for listen() was attached, so a later 'error' event (an
  // accept failing with EMFILE, say) had no listener and threw out of the process
  it('hands errors after listen to onError', async () => {
    const seen: Error[] = [];
    const { server } = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      metrics: createMetrics().registry,
      notReadyReason: () => null,
      status: async () => ({}),
      onError: err => seen.push(err),
    });
    try {
      const err = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
      server.emit('error', err);
      expect(seen).to.deep.equal([err]);
    } finally {
      server.close();
    }
  });

  // review: /status or /readyz whose answer failed (the spool's folder gone) was a bare 500,
  // said nowhere
  it('an endpoint whose answer fails: 500, and the error to onError', async () => {
    const seen: Error[] = [];
    const { server, port } = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      metrics: createMetrics().registry,
      notReadyReason: () => Promise.reject(new Error('spool gone')),
      status: () => Promise.reject(new Error('listing failed')),
      onError: err => seen.push(err),
    });
    try {
      for (const path of ['/status', '/readyz']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        expect(res.status, path).to.equal(500);
      }
      expect(seen.map(e => e.message)).to.deep.equal([
        'listing failed',
        'spool gone',
      ]);
    } finally {
      server.close();
    }
  });
});
