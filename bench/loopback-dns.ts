// The benchmark's DNS server on loopback (test/helpers/dns-server.ts), in a process of its own:
// the harness blocks in spawnSync while smtp-source runs, and a server in it would answer
// nothing. It publishes an SPF record that passes 127.0.0.1 and a DMARC record (p=none) for the
// sender's domain, prints its address, and at the end of its stdin (the harness gone) prints how
// many questions it was asked and exits.
import { startDnsServer } from '../test/helpers/dns-server.js';

const dns = await startDnsServer();
dns
  .set('example.net', 'TXT', ['v=spf1 ip4:127.0.0.1 -all'])
  .set('_dmarc.example.net', 'TXT', ['v=DMARC1; p=none']);
process.stdout.write(`${dns.address}\n`);
process.stdin.resume().on('end', () => {
  process.stdout.write(`${dns.queries.length}\n`, () => process.exit(0));
});
