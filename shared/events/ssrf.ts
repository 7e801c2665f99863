import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, SocketAddress } from 'node:net';
// Agent from its own module, not the package entry (which brings fetch, WebSocket and the cache: 444 KiB).
import Agent from 'undici/lib/dispatcher/agent.js';

/**
 * Where an endpoint may point (issue 21, SSRF): a caller chooses the URL, paybridge makes the request,
 * so an address inside the network (metadata service, VPC hosts, loopback) is refused, at registration
 * and again at every connection (the name is resolved each time: a DNS answer that changes after
 * registration cannot lead a delivery inside). Loopback is allowed only on the local stack.
 */

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  // IPv4-compatible (deprecated): ::a9fe:a9fe is 169.254.169.254 to a stack that still maps it.
  ['::', 96],
  // IPv4-translated (RFC 2765, SIIT): ::ffff:0:7f00:1 is 127.0.0.1 to a translator. Not the IPv4-mapped form
  // (::ffff:0:0/96, judged by its IPv4 address below), and never routed on the internet: refused outright.
  ['::ffff:0:0:0', 96],
  ['100::', 64],
  // Teredo and 6to4 tunnel to the IPv4 address inside them; local-use NAT64 (RFC 8215) translates into
  // the operator's own network. The well-known NAT64 prefix is judged by the address it carries (below).
  ['2001::', 32],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['64:ff9b:1::', 48],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) PRIVATE.addSubnet(net, prefix, 'ipv6');
const NAT64 = new BlockList();
NAT64.addSubnet('64:ff9b::', 96, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is judged as the IPv4 address it carries, and so is
 * one in the well-known NAT64 prefix (RFC 6052: `64:ff9b::a9fe:a9fe` is 169.254.169.254 behind a NAT64
 * gateway, as in an IPv6-only VPC subnet); a NAT64 address of a public IPv4 address stays allowed.
 */
function plain(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1] as string, family: 'ipv4' };
  if (isIP(address) === 6 && NAT64.check(address, 'ipv6')) {
    const low = new SocketAddress({ address, family: 'ipv6' }).address.split(':').slice(-2);
    const word = (h: string | undefined) => parseInt(h || '0', 16);
    const [hi, lo] = [word(low[0]), word(low[1])];
    return { address: [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.'), family: 'ipv4' };
  }
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

export const isLoopback = (address: string) => {
  const p = plain(address);
  return LOOPBACK.check(p.address, p.family);
};

/** Why `address` may not be connected to, or undefined when it may. */
export function refusedAddress(address: string, allowLoopback: boolean): string | undefined {
  const p = plain(address);
  if (LOOPBACK.check(p.address, p.family)) return allowLoopback ? undefined : `${address} is a loopback address`;
  if (PRIVATE.check(p.address, p.family)) return `${address} is in a private, link-local or reserved range`;
  return undefined;
}

export interface UrlPolicy {
  /** The local stack: http and loopback allowed (a receiver on this machine). */
  allowLoopback: boolean;
}

/** Checks an endpoint URL as given (scheme, credentials, host): a message per problem, empty when fine. */
export function urlProblems(text: string, policy: UrlPolicy): string[] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return ['is not an absolute URL'];
  }
  const problems: string[] = [];
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopbackName = host === 'localhost' || (isIP(host) !== 0 && isLoopback(host));
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowLoopback && loopbackName)) {
    problems.push(policy.allowLoopback ? 'must be https (http only to a loopback address on the local stack)' : 'must be https');
  }
  if (url.username || url.password) problems.push('must not carry credentials: paybridge signs every delivery instead');
  if (isIP(host) !== 0) {
    const why = refusedAddress(host, policy.allowLoopback);
    if (why) problems.push(`points inside the network: ${why}`);
  } else if (host === 'localhost' && !policy.allowLoopback) problems.push('points inside the network: localhost');
  if (text.length > 2000) problems.push('must be at most 2000 characters');
  return problems;
}

/** Resolves the URL's host and refuses it when any address it has is inside the network. */
export async function resolvedProblems(text: string, policy: UrlPolicy, lookup: typeof dnsLookup = dnsLookup): Promise<string[]> {
  const host = new URL(text).hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) return [];
  const addresses = await new Promise<LookupAddress[] | Error>((resolve) => lookup(host, { all: true }, (err, found) => resolve(err ?? found)));
  if (addresses instanceof Error) return [`its host ${host} does not resolve (${(addresses as NodeJS.ErrnoException).code ?? addresses.message})`];
  const refused = addresses.map((a) => refusedAddress(a.address, policy.allowLoopback)).filter((x): x is string => x !== undefined);
  return refused.length ? [`points inside the network: ${host} resolves to ${refused[0]}`] : [];
}

/** An undici dispatcher that connects only to addresses the policy allows, checked at every connection. */
export function guardedAgent(policy: UrlPolicy, timeoutMs: number): Agent {
  return new Agent({
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: Math.min(timeoutMs, 10_000),
    connect: {
      lookup(hostname, options, callback) {
        dnsLookup(hostname, { ...options, all: true }, (err, found) => {
          if (err) return callback(err, '', 4);
          const list = found as LookupAddress[];
          const refused = list.map((a) => refusedAddress(a.address, policy.allowLoopback)).find((x) => x !== undefined);
          if (refused) return callback(Object.assign(new Error(`refused: ${refused}`), { code: 'EADDRNOTALLOWED' }), '', 4);
          const first = list[0] as LookupAddress;
          // Node's net asks for one address unless it asked for all (autoSelectFamily).
          if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
          callback(null, first.address, first.family);
        });
      },
    },
  });
}
