/**
 * bench/dns-qps/zone: the catalog both DNS servers serve, as plain data, and the same content as
 * a BIND zone file for the `cairn.` zone.
 *
 * The catalog: `serviceCount` services `svc1`..`svc50` of `instancesPerService` instances each,
 * spread over `nodeCount` nodes (instance j of svc i on node (3i + j) mod 30, so the 3 instances of
 * a service are on 3 different nodes), and one service `big` of `bigInstanceCount` instances, one
 * per node `b1`..`b300`. Every instance has its node's address, so Cairn's SRV target is
 * `<node>.node.cairn` (docs/dns.md) and the zone file holds that name's A record.
 *
 * What Cairn answers for `<svc>.service.cairn` and what the zone file makes BIND answer:
 * - A: one record per instance address, TTL 0 (Cairn's serviceTtlS default).
 * - SRV: `1 1 <port> <node>.node.cairn.` per instance, TTL 0, with the targets' A records in the
 *   additional section (BIND adds them itself: the targets are in its zone).
 * - an unknown name under `service.cairn`: NXDOMAIN with the SOA in the authority section; the
 *   SOA's negative TTL (minimum) is 0 in both.
 * BIND needs an NS record for its zone (`ns.cairn.`); Cairn has none, and the bench never asks
 * for it. Record order differs by design: Cairn shuffles every answer (Fisher-Yates), BIND applies
 * its `rrset-order` (named.conf sets `order random`).
 */

export interface ZoneNode {
  readonly name: string
  readonly address: string
}

export interface ZoneInstance {
  readonly id: string
  readonly service: string
  readonly node: ZoneNode
  readonly port: number
}

export interface Zone {
  /** Without the trailing dot. */
  readonly domain: string
  readonly nodes: readonly ZoneNode[]
  /** Service name → its instances, in registration order. */
  readonly services: ReadonlyMap<string, readonly ZoneInstance[]>
}

export const serviceCount = 50
export const instancesPerService = 3
export const nodeCount = 30
export const bigService = 'big'
export const bigInstanceCount = 300
const bigPort = 9000
const servicePortBase = 8000

export function benchZone(): Zone {
  const nodes: ZoneNode[] = []
  for (let i = 1; i <= nodeCount; i++) nodes.push({ name: `n${i}`, address: `10.0.0.${i}` })
  const services = new Map<string, ZoneInstance[]>()
  for (let s = 1; s <= serviceCount; s++) {
    const service = `svc${s}`
    const instances: ZoneInstance[] = []
    for (let j = 0; j < instancesPerService; j++) {
      const node = nodes[(s * instancesPerService + j) % nodeCount]!
      instances.push({ id: `${service}-${j + 1}`, service, node, port: servicePortBase + s })
    }
    services.set(service, instances)
  }
  const big: ZoneInstance[] = []
  for (let i = 1; i <= bigInstanceCount; i++) {
    const node = { name: `b${i}`, address: `10.1.${i >> 8}.${i & 0xff}` }
    nodes.push(node)
    big.push({ id: `${bigService}-${i}`, service: bigService, node, port: bigPort })
  }
  services.set(bigService, big)
  return { domain: 'cairn', nodes, services }
}

/** The SRV target Cairn gives an instance that has its node's address. */
export function srvTarget(zone: Zone, instance: ZoneInstance): string {
  return `${instance.node.name}.node.${zone.domain}`
}

/**
 * The zone file for BIND: the same names, types, TTLs and rdata as Cairn's answers. The SOA
 * matches Cairn's (`ns.<domain>. hostmaster.<domain>. <serial> 3600 600 86400 0`, TTL 0).
 */
export function bindZoneText(zone: Zone): string {
  const lines = [
    `$ORIGIN ${zone.domain}.`,
    '$TTL 0',
    `@ IN SOA ns.${zone.domain}. hostmaster.${zone.domain}. 1 3600 600 86400 0`,
    `@ IN NS ns.${zone.domain}.`,
    'ns IN A 127.0.0.1',
  ]
  for (const node of zone.nodes) lines.push(`${node.name}.node IN A ${node.address}`)
  for (const [service, instances] of zone.services) {
    for (const instance of instances) {
      lines.push(`${service}.service IN A ${instance.node.address}`)
      lines.push(`${service}.service IN SRV 1 1 ${instance.port} ${srvTarget(zone, instance)}.`)
    }
  }
  return `${lines.join('\n')}\n`
}
