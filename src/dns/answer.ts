/**
 * Building the answer to one question from the catalog view, as encoded records (not yet a
 * message: response.ts lays them out, shuffles and truncates).
 *
 * Rules (Consul's, see docs/dns.md):
 * - Service names: instances whose status is critical are left out, and warning ones too when
 *   `onlyPassing`. A service with no instance left (or never registered) is NXDOMAIN.
 * - A known name without a record of the asked type is NOERROR with no answer (NODATA). Both
 *   negative answers carry the zone's SOA in the authority section (RFC 2308), whose TTL and
 *   minimum are `soa.minimum`, and whose serial is the catalog revision (mod 2^32).
 * - SRV: priority 1, weight 1, target `<node>.node.<domain>` when the instance has its node's
 *   address, else `<hex>.addr.<domain>`; each SRV's A/AAAA goes in the additional section.
 * - A and AAAA answers hold each address once. Records whose order clients may pick from
 *   (`shuffle`) are reordered per query by the responder, never here: this result is cached.
 * Invariant: a group's extras belong to its record only; dropping a group drops its extras.
 */
import type { CatalogView, ServiceInstance } from '../catalog/view.ts'
import { hexFromAddress } from './address.ts'
import type { DnsOptions } from './limits.ts'
import type { Lookup } from './names.ts'
import { encodeRecord, nameWire, questionNamePointer, Rcode, RecordType, txtStrings } from './wire.ts'

export interface RecordGroup {
  readonly record: Buffer
  /** Records for the additional section that only make sense with this one (an SRV's address). */
  readonly extras: readonly Buffer[]
}

export interface Answer {
  readonly rcode: number
  /** AA: set for every name in our domain. */
  readonly authoritative: boolean
  readonly groups: readonly RecordGroup[]
  readonly authority: readonly Buffer[]
  /** Whether the responder reorders `groups` on every query. */
  readonly shuffle: boolean
}

export function refused(): Answer {
  return { rcode: Rcode.REFUSED, authoritative: false, groups: [], authority: [], shuffle: false }
}

export function notImplemented(): Answer {
  return { rcode: Rcode.NOTIMP, authoritative: false, groups: [], authority: [], shuffle: false }
}

export function buildAnswer(view: CatalogView, options: DnsOptions, lookup: Lookup, qtype: number): Answer {
  switch (lookup.kind) {
    case 'outside':
      return refused()
    case 'unknown':
      return negative(view, options, Rcode.NXDOMAIN)
    case 'apex':
      if (qtype === RecordType.SOA || qtype === RecordType.ANY) {
        return positive([{ record: soaRecord(view, options), extras: [] }], false, view, options)
      }
      return negative(view, options, Rcode.NOERROR)
    case 'service':
      return serviceAnswer(view, options, lookup.service, lookup.tag, qtype)
    case 'node': {
      const node = view.node(lookup.node)
      if (node === undefined) return negative(view, options, Rcode.NXDOMAIN)
      const groups = addressGroups([node.address], qtype, options.nodeTtlS)
      if (qtype === RecordType.TXT || qtype === RecordType.ANY) {
        for (const key of Object.keys(node.meta).sort()) {
          const text = key.startsWith('rfc1035-') ? node.meta[key]! : `${key}=${node.meta[key]}`
          const strings = txtStrings(text)
          groups.push({
            record: encodeRecord(questionNamePointer, options.nodeTtlS, { type: 'TXT', strings }),
            extras: [],
          })
        }
      }
      return positive(groups, false, view, options)
    }
    case 'addr':
      return positive(addressGroups([lookup.address], qtype, options.nodeTtlS), false, view, options)
  }
}

function serviceAnswer(
  view: CatalogView,
  options: DnsOptions,
  service: string,
  tag: string | undefined,
  qtype: number,
): Answer {
  const instances = view.serviceInstances(service, tag).filter((instance) => isServed(instance, options))
  if (instances.length === 0) return negative(view, options, Rcode.NXDOMAIN)
  if (qtype !== RecordType.SRV) {
    const addresses = instances.map((instance) => instance.address)
    return positive(addressGroups(addresses, qtype, options.serviceTtlS), true, view, options)
  }
  const groups = instances.map((instance): RecordGroup => {
    const target = nameWire(srvTarget(view, options.domain, instance))
    const rdata = { type: 'SRV' as const, priority: 1, weight: 1, port: instance.port, target }
    const extras = addressGroups([instance.address], RecordType.ANY, options.serviceTtlS, target)
    return {
      record: encodeRecord(questionNamePointer, options.serviceTtlS, rdata),
      extras: extras.map((g) => g.record),
    }
  })
  return positive(groups, true, view, options)
}

function isServed(instance: ServiceInstance, options: DnsOptions): boolean {
  return instance.status === 'passing' || (instance.status === 'warning' && !options.onlyPassing)
}

const nodeLabel = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i

function srvTarget(view: CatalogView, domain: string, instance: ServiceInstance): string {
  const node = view.node(instance.node)
  if (node !== undefined && node.address === instance.address && nodeLabel.test(node.name)) {
    return `${node.name.toLowerCase()}.node.${domain}`
  }
  return `${hexFromAddress(instance.address)}.addr.${domain}`
}

/** One A or AAAA group per distinct address of the asked family (both for ANY). */
function addressGroups(
  addresses: readonly string[],
  qtype: number,
  ttlS: number,
  owner: Buffer = questionNamePointer,
): RecordGroup[] {
  const wantV4 = qtype === RecordType.A || qtype === RecordType.ANY
  const wantV6 = qtype === RecordType.AAAA || qtype === RecordType.ANY
  const groups: RecordGroup[] = []
  for (const address of new Set(addresses)) {
    const v6 = address.includes(':')
    if (v6 ? !wantV6 : !wantV4) continue
    groups.push({ record: encodeRecord(owner, ttlS, { type: v6 ? 'AAAA' : 'A', address }), extras: [] })
  }
  return groups
}

function positive(groups: RecordGroup[], shuffle: boolean, view: CatalogView, options: DnsOptions): Answer {
  if (groups.length === 0) return negative(view, options, Rcode.NOERROR)
  return { rcode: Rcode.NOERROR, authoritative: true, groups, authority: [], shuffle }
}

function negative(view: CatalogView, options: DnsOptions, rcode: number): Answer {
  return { rcode, authoritative: true, groups: [], authority: [soaRecord(view, options)], shuffle: false }
}

function soaRecord(view: CatalogView, options: DnsOptions): Buffer {
  const { domain, soa } = options
  return encodeRecord(nameWire(domain), soa.minimum, {
    type: 'SOA',
    primary: `ns.${domain}`,
    admin: `hostmaster.${domain}`,
    serial: view.revision % 0x100000000,
    refresh: soa.refresh,
    retry: soa.retry,
    expire: soa.expire,
    minimum: soa.minimum,
  })
}
