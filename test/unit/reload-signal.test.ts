// SIGHUP before the daemon is up is kept and acted on once it is; after, it acts at once.
import { expect } from 'chai';
import { listenForReload, onReload } from '../../src/app/signals.js';

describe('reload signal', () => {
  it('keeps a SIGHUP that comes before the handler, then passes every one on', () => {
    listenForReload();
    process.emit('SIGHUP', 'SIGHUP');
    process.emit('SIGHUP', 'SIGHUP');
    let reloads = 0;
    // two early ones are one pending reload: the files are read once, after the start
    onReload(() => reloads++);
    expect(reloads).to.equal(1);
    process.emit('SIGHUP', 'SIGHUP');
    expect(reloads).to.equal(2);
    // a new handler replaces the old one; nothing is pending
    let later = 0;
    onReload(() => later++);
    expect(later).to.equal(0);
    process.emit('SIGHUP', 'SIGHUP');
    expect([reloads, later]).to.deep.equal([2, 1]);
  });
});
