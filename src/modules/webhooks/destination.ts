import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

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
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
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

/**
 * Why this URL may not receive webhooks, or undefined when it may: `http(s)` only, no
 * credentials, and every address its host resolves to public (unless private ones are allowed).
 */
export async function destinationProblem(
  raw: string,
  allowPrivate: boolean,
): Promise<string | undefined> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'must be an absolute URL'
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https or http URL'
  if (url.username || url.password) return 'must not carry credentials'
  if (allowPrivate) return undefined
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  let addresses: string[]
  try {
    addresses = isIP(host)
      ? [host]
      : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address)
  } catch {
    return 'its host does not resolve'
  }
  if (addresses.length === 0 || !addresses.every(isPublicAddress))
    return 'resolves to a loopback, private, link-local or otherwise non-public address'
  return undefined
}
