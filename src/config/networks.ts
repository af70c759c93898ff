// Client networks as the configuration gives them: an address's one form, an allowed-networks
// entry (address or address/prefix) checked for soundness, and the list as a test of a client.
import { BlockList, isIP } from 'node:net';

/**
 * One form per address: an IPv4 client of a dual-stack listener (`::ffff:192.0.2.1`) is
 * `192.0.2.1`, and IPv6 is lower case.
 */
export function clientAddress(raw: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(raw);
  return mapped ? mapped[1]! : raw.toLowerCase();
}

/**
 * What is wrong with an allowed-networks entry (an address, or a network as address/prefix),
 * or undefined when it is sound.
 */
export function networkError(entry: string): string | undefined {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) {
    return `"${entry}" is not an IP address or network (address/prefix)`;
  }
  if (prefix === undefined) return undefined;
  const bits = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) {
    return `"${entry}": the prefix length must be 0 to ${bits}`;
  }
  return undefined;
}

/**
 * The allowed networks as a test of a client address; every address passes when the list is
 * empty. Entries must be sound (see networkError).
 */
export function allowedNetworks(
  entries: string[],
): (address: string) => boolean {
  if (entries.length === 0) return () => true;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return address => {
    const client = clientAddress(address);
    const family = isIP(client);
    return family !== 0 && list.check(client, family === 4 ? 'ipv4' : 'ipv6');
  };
}
