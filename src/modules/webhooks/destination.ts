import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { checkServerIdentity, type PeerCertificate } from 'node:tls'

// Loopback, private, link-local, carrier-grade NAT, multicast, reserved and documentation ranges.
const blocked = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4')
// No ::ffff:0:0/96 here: BlockList would match every IPv4 address against it. IPv4-mapped
// addresses are judged by their IPv4 part below.
// ::/96 holds ::, ::1 and the deprecated IPv4-compatible addresses; ::ffff:0:0:0/96 the
// IPv4-translated ones; NAT64 (both prefixes), 6to4 and 2001::/23 (Teredo, IETF assignments) can
// reach any IPv4 address, private ones included; fec0::/10 is the deprecated site-local range.
for (const [net, bits] of [
  ['::', 96],
  ['::ffff:0:0:0', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, bits, 'ipv6')

export function isPublicAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 0) return false
  if (family === 6) {
    // An IPv4-mapped address is judged as the IPv4 address it carries.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1]
    if (mapped) return isPublicAddress(mapped)
    // The same in hex, as URL parsing writes it: ::ffff:7f00:1 is 127.0.0.1.
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address)
    if (hex) {
      const high = Number.parseInt(hex[1] as string, 16)
      const low = Number.parseInt(hex[2] as string, 16)
      return isPublicAddress(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`)
    }
  }
  return !blocked.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

/** Where a delivery goes: the URL as saved, and the checked addresses to connect to. */
export type Destination = { url: URL; addresses: string[] }

/**
 * Resolves a webhook URL once: a problem when it may not receive webhooks (`http(s)` only, no
 * credentials, and every address its host resolves to public unless private ones are allowed),
 * else the addresses that were checked, which the delivery then connects to (see pinnedRequest).
 */
export async function resolveDestination(
  raw: string,
  allowPrivate: boolean,
): Promise<{ problem: string } | Destination> {
  const url = parseDestination(raw)
  if (typeof url === 'string') return { problem: url }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  let addresses: string[]
  try {
    addresses = isIP(host)
      ? [host]
      : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address)
  } catch {
    return { problem: 'its host does not resolve' }
  }
  if (addresses.length === 0) return { problem: 'its host does not resolve' }
  if (!allowPrivate && !addresses.every(isPublicAddress))
    return {
      problem: 'resolves to a loopback, private, link-local or otherwise non-public address',
    }
  return { url, addresses }
}

/** The URL, or why it cannot be a webhook destination whatever it resolves to. */
function parseDestination(raw: string): URL | string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'must be an absolute URL'
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https or http URL'
  if (url.username || url.password) return 'must not carry credentials'
  return url
}

/**
 * Why this URL may not receive webhooks, or undefined when it may (checked at create). With
 * private destinations allowed (tests, closed networks) the host is not looked up here.
 */
export async function destinationProblem(
  raw: string,
  allowPrivate: boolean,
): Promise<string | undefined> {
  if (allowPrivate) {
    const url = parseDestination(raw)
    return typeof url === 'string' ? url : undefined
  }
  const target = await resolveDestination(raw, false)
  return 'problem' in target ? target.problem : undefined
}

/**
 * The request that reaches the checked address and nothing else (no second DNS lookup, so a
 * name that changes between the check and the connection cannot point it elsewhere): the URL
 * with its host replaced by the address, the `Host` header the receiver expects, and for https
 * the name for SNI and the certificate check (the certificate must be valid for the name).
 */
export function pinnedRequest(url: URL, address: string) {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const pinned = new URL(url.href)
  pinned.hostname = isIP(address) === 6 ? `[${address}]` : address
  const tls =
    url.protocol === 'https:' && !isIP(hostname)
      ? {
          serverName: hostname,
          checkServerIdentity: (_: string, cert: PeerCertificate) =>
            checkServerIdentity(hostname, cert),
        }
      : undefined
  return { url: pinned.href, host: url.host, tls }
}
