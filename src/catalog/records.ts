/**
 * The catalog's records in the keyspace: where each lives, what it holds, and how it is read back.
 *
 * Layout (all under the hidden prefix, so etcd v2 listings do not show it):
 *
 *   /_cairn/catalog/nodes/<node>              NodeRecord
 *   /_cairn/catalog/services/<node>/<id>      ServiceRecord (a service instance on that node)
 *   /_cairn/catalog/checks/<node>/<id>        CheckRecord (node-level when ServiceID is '')
 *   /_cairn/catalog/machines/<node>           MachineRecord, attached to the agent's machine lease
 *
 * `<node>` is the node name lower-cased (node names compare case-insensitively, as in Consul and
 * DNS) and `<id>` the service or check id as given; both are percent-encoded with
 * encodeURIComponent so that any name is one clean key segment. Names are validated before they
 * are encoded (nameProblem): non-empty, within catalogNameBytesMax, not `.` or `..`.
 *
 * Values are JSON with Consul's field names, so the API renders them with little translation.
 * The keyspace's revisions are the records' CreateIndex and ModifyIndex.
 *
 * Invariants:
 * - decode* never throws: a value that is not a well-formed record (written by hand through the
 *   v2 API, say) yields undefined and the catalog leaves that key out, so one bad key cannot take
 *   the catalog view down.
 * - A machine key exists exactly while its agent's lease is alive: the keyspace deletes it when the
 *   lease expires or is revoked, and that deletion is what marks the machine failed.
 */
import { prefixRange } from '../kv/prefix-feed.ts'

export { prefixRange }

export const catalogPrefix = '/_cairn/catalog/'
export const nodesPrefix = `${catalogPrefix}nodes/`
export const servicesPrefix = `${catalogPrefix}services/`
export const checksPrefix = `${catalogPrefix}checks/`
export const machinesPrefix = `${catalogPrefix}machines/`

/** Longest node name, service id or check id, in UTF-8 bytes (Consul leaves it unbounded). */
export const catalogNameBytesMax = 256

export type CheckStatus = 'passing' | 'warning' | 'critical'
export const checkStatusRank: Readonly<Record<CheckStatus, number>> = { passing: 0, warning: 1, critical: 2 }

export interface NodeRecord {
  ID: string
  Node: string
  Address: string
  Datacenter: string
  TaggedAddresses: Record<string, string>
  Meta: Record<string, string>
  /** True when a Cairn agent owns the node: its liveness then follows the machine lease. */
  Agent: boolean
}

export interface ServiceWeights {
  Passing: number
  Warning: number
}

export interface ServiceRecord {
  ID: string
  Service: string
  Tags: string[]
  Address: string
  TaggedAddresses: Record<string, { Address: string; Port: number }>
  Meta: Record<string, string>
  Port: number
  Weights: ServiceWeights
  EnableTagOverride: boolean
  Kind: string
}

export interface CheckRecord {
  CheckID: string
  Name: string
  Status: CheckStatus
  Notes: string
  Output: string
  ServiceID: string
  ServiceName: string
  ServiceTags: string[]
  Type: string
  /** Consul's Definition object (Interval, Timeout, HTTP, TCP, ...), as strings, for display. */
  Definition: Record<string, unknown>
}

export interface MachineRecord {
  Node: string
  /** The lease the key is attached to. */
  Lease: number
  /** The agent's clock when it (re)joined, ms since the epoch. */
  SinceMs: number
  /** The agent's HTTP endpoint (`http://127.0.0.1:4001`), for calls to that agent (unit journals). */
  Api?: string
}

/** The node segment of keys: lower-cased, percent-encoded. */
export function nodeSegment(node: string): string {
  return encodeURIComponent(node.toLowerCase())
}

export function idSegment(id: string): string {
  return encodeURIComponent(id)
}

export function nodeKey(node: string): string {
  return nodesPrefix + nodeSegment(node)
}

export function machineKey(node: string): string {
  return machinesPrefix + nodeSegment(node)
}

export function serviceKey(node: string, serviceId: string): string {
  return `${servicesPrefix}${nodeSegment(node)}/${idSegment(serviceId)}`
}

export function checkKey(node: string, checkId: string): string {
  return `${checksPrefix}${nodeSegment(node)}/${idSegment(checkId)}`
}

/** [key, rangeEnd) of every key below `prefix` (which ends with '/'). */

export function nodeServicesRange(node: string): { key: string; rangeEnd: string } {
  return prefixRange(`${servicesPrefix}${nodeSegment(node)}/`)
}

export function nodeChecksRange(node: string): { key: string; rangeEnd: string } {
  return prefixRange(`${checksPrefix}${nodeSegment(node)}/`)
}

/** Why `name` cannot be a node name, service id or check id, or undefined when it can. */
export function nameProblem(name: unknown, what: string): string | undefined {
  if (typeof name !== 'string' || name === '') return `${what} is required`
  if (Buffer.byteLength(name) > catalogNameBytesMax)
    return `${what} is longer than ${catalogNameBytesMax} bytes`
  if (name === '.' || name === '..') return `${what} may not be "." or ".."`
  return undefined
}

/** What a catalog key names, or undefined for a key outside the layout. */
export type CatalogKey =
  | { kind: 'node'; node: string }
  | { kind: 'machine'; node: string }
  | { kind: 'service'; node: string; id: string }
  | { kind: 'check'; node: string; id: string }

export function parseCatalogKey(key: string): CatalogKey | undefined {
  if (!key.startsWith(catalogPrefix)) return undefined
  const rest = key.slice(catalogPrefix.length).split('/')
  try {
    if (rest.length === 2 && rest[0] === 'nodes')
      return { kind: 'node', node: decodeURIComponent(rest[1] as string) }
    if (rest.length === 2 && rest[0] === 'machines') {
      return { kind: 'machine', node: decodeURIComponent(rest[1] as string) }
    }
    if (rest.length === 3 && (rest[0] === 'services' || rest[0] === 'checks')) {
      const node = decodeURIComponent(rest[1] as string)
      const id = decodeURIComponent(rest[2] as string)
      return rest[0] === 'services' ? { kind: 'service', node, id } : { kind: 'check', node, id }
    }
  } catch {
    return undefined // a malformed percent escape: not one of ours
  }
  return undefined
}

function parseObject(value: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(value)
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

function isStringMap(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  for (const v of Object.values(value)) if (typeof v !== 'string') return false
  return true
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string')
}

function isStatus(value: unknown): value is CheckStatus {
  return value === 'passing' || value === 'warning' || value === 'critical'
}

export function decodeNode(value: string): NodeRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { ID, Node, Address, Datacenter, TaggedAddresses, Meta, Agent } = o
  if (typeof Node !== 'string' || nameProblem(Node, 'Node') !== undefined) return undefined
  if (typeof Address !== 'string' || typeof ID !== 'string' || typeof Datacenter !== 'string')
    return undefined
  if (!isStringMap(TaggedAddresses) || !isStringMap(Meta) || typeof Agent !== 'boolean') return undefined
  return { ID, Node, Address, Datacenter, TaggedAddresses, Meta, Agent }
}

export function decodeService(value: string): ServiceRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { ID, Service, Tags, Address, TaggedAddresses, Meta, Port, Weights, EnableTagOverride, Kind } = o
  if (typeof ID !== 'string' || typeof Service !== 'string' || ID === '' || Service === '') return undefined
  if (!isStringList(Tags) || typeof Address !== 'string' || !isStringMap(Meta)) return undefined
  if (typeof Port !== 'number' || !Number.isInteger(Port) || Port < 0 || Port > 65535) return undefined
  if (typeof EnableTagOverride !== 'boolean' || typeof Kind !== 'string') return undefined
  if (typeof TaggedAddresses !== 'object' || TaggedAddresses === null) return undefined
  const w = Weights as Partial<ServiceWeights> | null | undefined
  if (typeof w !== 'object' || w === null || typeof w.Passing !== 'number' || typeof w.Warning !== 'number') {
    return undefined
  }
  return {
    ID,
    Service,
    Tags,
    Address,
    TaggedAddresses: TaggedAddresses as ServiceRecord['TaggedAddresses'],
    Meta,
    Port,
    Weights: { Passing: w.Passing, Warning: w.Warning },
    EnableTagOverride,
    Kind,
  }
}

export function decodeCheck(value: string): CheckRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { CheckID, Name, Status, Notes, Output, ServiceID, ServiceName, ServiceTags, Type, Definition } = o
  if (typeof CheckID !== 'string' || CheckID === '' || typeof Name !== 'string' || !isStatus(Status))
    return undefined
  if (typeof Notes !== 'string' || typeof Output !== 'string' || typeof ServiceID !== 'string')
    return undefined
  if (typeof ServiceName !== 'string' || !isStringList(ServiceTags) || typeof Type !== 'string')
    return undefined
  if (typeof Definition !== 'object' || Definition === null || Array.isArray(Definition)) return undefined
  return {
    CheckID,
    Name,
    Status,
    Notes,
    Output,
    ServiceID,
    ServiceName,
    ServiceTags,
    Type,
    Definition: Definition as Record<string, unknown>,
  }
}

export function decodeMachine(value: string): MachineRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { Node, Lease, SinceMs } = o
  if (typeof Node !== 'string' || typeof Lease !== 'number' || typeof SinceMs !== 'number') return undefined
  const record: MachineRecord = { Node, Lease, SinceMs }
  if (typeof o.Api === 'string') record.Api = o.Api
  return record
}

/** Fills the defaults Consul's catalog shows for a service registered with fewer fields. */
export function serviceRecord(
  fields: Partial<ServiceRecord> & Pick<ServiceRecord, 'ID' | 'Service'>,
): ServiceRecord {
  return {
    ID: fields.ID,
    Service: fields.Service,
    Tags: fields.Tags ?? [],
    Address: fields.Address ?? '',
    TaggedAddresses: fields.TaggedAddresses ?? {},
    Meta: fields.Meta ?? {},
    Port: fields.Port ?? 0,
    Weights: fields.Weights ?? { Passing: 1, Warning: 1 },
    EnableTagOverride: fields.EnableTagOverride ?? false,
    Kind: fields.Kind ?? '',
  }
}

export function checkRecord(fields: Partial<CheckRecord> & Pick<CheckRecord, 'CheckID'>): CheckRecord {
  return {
    CheckID: fields.CheckID,
    Name: fields.Name ?? fields.CheckID,
    Status: fields.Status ?? 'critical',
    Notes: fields.Notes ?? '',
    Output: fields.Output ?? '',
    ServiceID: fields.ServiceID ?? '',
    ServiceName: fields.ServiceName ?? '',
    ServiceTags: fields.ServiceTags ?? [],
    Type: fields.Type ?? '',
    Definition: fields.Definition ?? {},
  }
}

export function nodeRecord(fields: Partial<NodeRecord> & Pick<NodeRecord, 'Node' | 'Address'>): NodeRecord {
  return {
    ID: fields.ID ?? '',
    Node: fields.Node,
    Address: fields.Address,
    Datacenter: fields.Datacenter ?? 'dc1',
    TaggedAddresses: fields.TaggedAddresses ?? {},
    Meta: fields.Meta ?? {},
    Agent: fields.Agent ?? false,
  }
}
