// Queue ids: unique, in letters and digits, sorted by time.
import { expect } from 'chai';
import { newQueueId } from '../../src/mail/queue-id.js';

describe('newQueueId', () => {
  it('10,000 ids of one millisecond are all different (the random pool refills on the way)', () => {
    const now = Date.UTC(2026, 0, 1);
    const ids = new Set(Array.from({ length: 10_000 }, () => newQueueId(now)));
    expect(ids.size).to.equal(10_000);
    for (const id of ids) expect(id).to.match(/^[0-9A-Z]{18}$/);
  });

  it('sorts by time: a later millisecond sorts after', () => {
    const now = Date.UTC(2026, 0, 1);
    const earlier = Array.from({ length: 100 }, () => newQueueId(now));
    const later = Array.from({ length: 100 }, () => newQueueId(now + 1));
    for (const a of earlier) {
      for (const b of later) expect(a < b).to.equal(true);
    }
  });
});
