import { describe, expect, it } from 'vitest';
import { refusedAddress, urlProblems } from '../../../shared/events/ssrf.js';

/**
 * IPv6 forms that carry an IPv4 address inside them reach that IPv4 address through a translator
 * (NAT64 in an IPv6-only VPC subnet, 6to4, Teredo): 64:ff9b::a9fe:a9fe is 169.254.169.254.
 */
describe('SSRF: IPv6 addresses that embed an internal IPv4 address (issue 21 review)', () => {
  it.each([
    ['64:ff9b::a9fe:a9fe', 'NAT64 (RFC 6052) of 169.254.169.254'],
    ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
    ['64:ff9b:1::a9fe:a9fe', 'local-use NAT64 (RFC 8215)'],
    ['2002:a9fe:a9fe::1', '6to4 of 169.254.169.254'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['::7f00:1', 'IPv4-compatible 127.0.0.1'],
    ['fec0::1', 'site-local (deprecated, still routed inside some networks)'],
    ['100::1', 'discard-only'],
    // Found by the review of 4980455: the IPv4-translated form (RFC 2765, SIIT) is not the mapped one (::ffff:0:0/96).
    ['::ffff:0:7f00:1', 'IPv4-translated 127.0.0.1'],
    ['::ffff:0:a9fe:a9fe', 'IPv4-translated 169.254.169.254'],
    ['::ffff:0:808:808', 'IPv4-translated 8.8.8.8 (the whole translated range: a translator hands it to whatever the network routes)'],
  ])('refuses %s (%s)', (address) => {
    expect(refusedAddress(address, false)).toBeDefined();
    expect(urlProblems(`https://[${address}]/hook`, { allowLoopback: false })[0]).toMatch(/inside the network/);
  });

  it('still allows a public IPv6 address, and NAT64 of a public IPv4 one', () => {
    expect(refusedAddress('2606:4700:4700::1111', false)).toBeUndefined();
    expect(refusedAddress('64:ff9b::5db8:d822', false)).toBeUndefined();
  });
});
