// The body of /status (observability/status.ts), as a daemon and a cluster primary build it.
import { expect } from 'chai';
import {
  buildStatus,
  type DaemonStatus,
  type FleetView,
  type StatusSources,
} from '../../src/observability/status.js';

const FLEET: FleetView = {
  redis: { up: true, since: '2026-12-07T00:00:00.000Z', fallbacks: 0 },
};

function sources(over: Partial<StatusSources>): StatusSources {
  return {
    mode: 'queue',
    notReadyReason: async () => null,
    pausedReason: () => null,
    fleet: async () => undefined,
    ...over,
  };
}

describe('buildStatus', () => {
  const table: Array<[string, Partial<StatusSources>, DaemonStatus]> = [
    [
      'ready, running, no spool, no fleet (sync mode)',
      { mode: 'sync' },
      { ready: true, delivery: { mode: 'sync', paused: false, reason: null } },
    ],
    [
      'not ready: the reason said',
      { notReadyReason: async () => 'spool not writable' },
      {
        ready: false,
        notReady: 'spool not writable',
        delivery: { mode: 'queue', paused: false, reason: null },
      },
    ],
    [
      'paused by the API: still ready, the reason said',
      { pausedReason: () => 'api answered 401' },
      {
        ready: true,
        delivery: { mode: 'queue', paused: true, reason: 'api answered 401' },
      },
    ],
    [
      'the spool counts and the fleet view when there are some',
      {
        spool: async () => ({ waiting: 3, dead: 1 }),
        fleet: async () => FLEET,
      },
      {
        ready: true,
        delivery: { mode: 'queue', paused: false, reason: null },
        spool: { waiting: 3, dead: 1 },
        fleet: FLEET,
      },
    ],
  ];
  for (const [name, over, expected] of table) {
    it(name, async () => {
      expect(await buildStatus(sources(over))).to.deep.equal(expected);
    });
  }
});
