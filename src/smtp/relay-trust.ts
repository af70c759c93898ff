// XCLIENT and XFORWARD from trusted relays (smtp.xclient, smtp.xforward): the configured
// networks turned into what smtp-server understands, a list of exact peer addresses.
import type { SMTPServerSession } from 'smtp-server';
import { allowedNetworks } from '../config/networks.js';

/** The relays that may use each command: addresses or networks, as smtp.allowedNetworks. */
export interface RelayTrustConfig {
  xclient: string[];
  xforward: string[];
}

/** One command's trust: the configured networks, and the trusted peers connected now. */
class TrustedPeers {
  /** handed to smtp-server (useXClient / useXForward), which reads it at every EHLO and command */
  readonly addresses: string[] = [];
  private readonly sessions = new Map<string, number>();
  private readonly trusted: (address: string) => boolean;

  constructor(readonly networks: string[]) {
    // allowedNetworks lets everyone through an empty list; here empty means no one
    const listed = allowedNetworks(networks);
    this.trusted = address => networks.length > 0 && listed(address);
  }

  /** Counts a session of `peer`; true when the peer is trusted (and now listed). */
  add(peer: string): boolean {
    if (!this.trusted(peer)) return false;
    const count = this.sessions.get(peer) ?? 0;
    if (count === 0) this.addresses.push(peer);
    this.sessions.set(peer, count + 1);
    return true;
  }

  /** Gives back a session `add()` counted; the peer leaves the list with its last session. */
  remove(peer: string): void {
    const count = this.sessions.get(peer) ?? 0;
    if (count > 1) return void this.sessions.set(peer, count - 1);
    this.sessions.delete(peer);
    const at = this.addresses.indexOf(peer);
    if (at >= 0) this.addresses.splice(at, 1);
  }
}

/**
 * Which peers may send XCLIENT and XFORWARD. smtp-server takes a list of exact addresses and
 * checks the peer the session was accepted from (the PROXY header's client, if any), never the
 * address a command gave later; networks it cannot take. So each admitted session whose peer
 * is in a configured network puts that address on the list until its last session closes: the
 * list only ever holds trusted addresses, and holds every trusted peer that is connected.
 */
export class RelayTrust {
  private readonly xclient: TrustedPeers;
  private readonly xforward: TrustedPeers;
  /** the peer of each admitted session, by id: XCLIENT and XFORWARD change remoteAddress */
  private readonly peers = new Map<string, string>();

  constructor(config: RelayTrustConfig) {
    this.xclient = new TrustedPeers(config.xclient);
    this.xforward = new TrustedPeers(config.xforward);
  }

  /** smtp-server's useXClient and useXForward options: false when nothing is configured. */
  options(): { useXClient: string[] | false; useXForward: string[] | false } {
    return {
      useXClient: this.xclient.networks.length > 0 && this.xclient.addresses,
      useXForward: this.xforward.networks.length > 0 && this.xforward.addresses,
    };
  }

  /** A session was admitted (onConnect): its peer is the one trusted, or not. */
  admit(session: SMTPServerSession): void {
    const peer = session.remoteAddress;
    const counted = [this.xclient.add(peer), this.xforward.add(peer)];
    if (counted.some(Boolean)) this.peers.set(session.id, peer);
  }

  /** A session closed: what admit() counted is given back. */
  release(session: SMTPServerSession): void {
    const peer = this.peers.get(session.id);
    if (peer === undefined) return;
    this.peers.delete(session.id);
    this.xclient.remove(peer);
    this.xforward.remove(peer);
  }
}

/**
 * The client a trusted relay named for this session, with the relay's address, or undefined
 * when none did. XFORWARD's HELO is in hostNameAppearsAs already; XCLIENT's is not (the relay
 * then sends its own EHLO), so it is taken from the command.
 */
export function forwardedClient(
  session: SMTPServerSession,
): { relay: string; helo: string | undefined } | undefined {
  // absent on a session of smtp-server's own tests' making; a Map in every real one
  const xclient = session.xClient as SMTPServerSession['xClient'] | undefined;
  const xforward = session.xForward as
    SMTPServerSession['xForward'] | undefined;
  const relay = xclient?.get('ADDR:DEFAULT') ?? xforward?.get('ADDR:DEFAULT');
  if (typeof relay !== 'string') return undefined;
  const helo = xclient?.get('HELO');
  return { relay, helo: typeof helo === 'string' && helo ? helo : undefined };
}
