/**
 * What a question name asks for, relative to the served domain (labels already lower-cased):
 *
 *   <domain>                                  apex      (SOA)
 *   <svc>.service.<domain>                    service
 *   <tag>.<svc>.service.<domain>              service, only instances with the tag
 *   _<svc>._<tag|tcp>[.service].<domain>      service (RFC 2782); `_tcp` means no tag filter, and
 *                                             `_udp` too: the protocol slot doubles as a tag
 *                                             (Consul's rule)
 *   <node>.node.<domain>                      node
 *   <hex>.addr.<domain>                       address (8 hex digits: IPv4, 32: IPv6), SRV targets
 *
 * Anything else under the domain is `unknown` (NXDOMAIN); a name outside it is `outside`.
 * Consul's datacenter label (`.<dc>.`), prepared queries and multi-label tags are not served.
 */
import { addressFromHex } from './address.ts'

export type Lookup =
  | { kind: 'outside' }
  | { kind: 'unknown' }
  | { kind: 'apex' }
  | { kind: 'service'; service: string; tag: string | undefined }
  | { kind: 'node'; node: string }
  | { kind: 'addr'; address: string }

export function parseName(labels: readonly string[], domainLabels: readonly string[]): Lookup {
  const rest = labels.length - domainLabels.length
  if (rest < 0) return { kind: 'outside' }
  for (let i = 0; i < domainLabels.length; i++) {
    if (labels[rest + i] !== domainLabels[i]) return { kind: 'outside' }
  }
  const local = labels.slice(0, rest)
  if (local.length === 0) return { kind: 'apex' }
  return parseRfc2782(local) ?? parseLocal(local)
}

function parseLocal(local: readonly string[]): Lookup {
  const last = local[local.length - 1]
  if (last === 'service' && local.length === 2) return { kind: 'service', service: local[0]!, tag: undefined }
  if (last === 'service' && local.length === 3) return { kind: 'service', service: local[1]!, tag: local[0]! }
  if (last === 'node' && local.length === 2) return { kind: 'node', node: local[0]! }
  if (last === 'addr' && local.length === 2) {
    const address = addressFromHex(local[0]!)
    if (address !== undefined) return { kind: 'addr', address }
  }
  return { kind: 'unknown' }
}

function parseRfc2782(local: readonly string[]): Lookup | undefined {
  const fits = local.length === 2 || (local.length === 3 && local[2] === 'service')
  const [service, protocol] = local
  if (!fits || !service?.startsWith('_') || !protocol?.startsWith('_')) return undefined
  if (service.length < 2 || protocol.length < 2) return { kind: 'unknown' }
  const tag = protocol === '_tcp' || protocol === '_udp' ? undefined : protocol.slice(1)
  return { kind: 'service', service: service.slice(1), tag }
}
