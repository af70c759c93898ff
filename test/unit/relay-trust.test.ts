// RelayTrust: the configured networks as smtp-server's list of trusted peer addresses, which
// holds a trusted peer while any of its sessions is open, and never an untrusted one.
import { expect } from 'chai';
import type { SMTPServerSession } from 'smtp-server';
import { RelayTrust } from '../../src/smtp/relay-trust.js';

function session(id: string, remoteAddress: string): SMTPServerSession {
  return { id, remoteAddress } as SMTPServerSession;
}

describe('RelayTrust', () => {
  it('is off (false) for a command with no networks', () => {
    const trust = new RelayTrust({ xclient: [], xforward: ['10.0.0.0/8'] });
    const options = trust.options();
    expect(options.useXClient).to.equal(false);
    expect(options.useXForward).to.deep.equal([]);
  });

  it('lists a trusted peer while one of its sessions is open, then forgets it', () => {
    const trust = new RelayTrust({
      xclient: ['192.0.2.0/24'],
      xforward: ['192.0.2.25'],
    });
    const { useXClient, useXForward } = trust.options();
    trust.admit(session('a', '192.0.2.25'));
    trust.admit(session('b', '192.0.2.25'));
    trust.admit(session('c', '192.0.2.26'));
    expect(useXClient).to.deep.equal(['192.0.2.25', '192.0.2.26']);
    expect(useXForward).to.deep.equal(['192.0.2.25']);
    trust.release(session('a', '198.51.100.1')); // XCLIENT changed its address: the peer counts
    expect(useXClient).to.deep.equal(['192.0.2.25', '192.0.2.26']);
    trust.release(session('b', '192.0.2.25'));
    trust.release(session('c', '192.0.2.26'));
    expect(useXClient).to.deep.equal([]);
    expect(useXForward).to.deep.equal([]);
  });

  it('never lists an untrusted peer', () => {
    const trust = new RelayTrust({ xclient: ['192.0.2.0/24'], xforward: [] });
    trust.admit(session('a', '198.51.100.1'));
    trust.admit(session('b', '::ffff:198.51.100.1'));
    expect(trust.options().useXClient).to.deep.equal([]);
    trust.release(session('a', '198.51.100.1'));
  });
});
