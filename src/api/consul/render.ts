/**
 * Rendering the catalog's records (records.ts, as CatalogState stores them) into the JSON shapes
 * Consul's catalog, health and agent endpoints answer with, and selecting which rendered entries
 * an answer holds: `?tag`, `?node-meta`, `?passing`, `?dc` and `?filter` (consul docs
 * api-docs/catalog.mdx, health.mdx; reference A2).
 *
 * Field names and their order are Consul's. Where Consul omits an empty field (`Kind`), we keep
 * it (as ''), so that a `?filter` on it evaluates the same on every entry.
 *
 * Invariants:
 * - Renderers copy: a rendered entry never aliases a stored record's arrays or maps, so a caller
 *   may sort or filter it freely and CatalogState's records stay as they were.
 * - The filter runs on rendered entries, exactly what the client receives, so a selector names
 *   a JSON field of the answer; a filter fault is CONSUL_FILTER_INVALID (400), never a 500.
 * - Every selection helper is pure and throws only CairnErrors naming the bad parameter.
 */
import type { CheckRecord, NodeRecord, ServiceRecord } from '../../catalog/records.ts'
import type { HealthCheckView, ServiceEntry, Stored } from '../../catalog/state.ts'
import { CairnError } from '../../errors.ts'
import type { ConsulApiDeps } from './deps.ts'
import { type FieldSchema, isFilterError, parseFilter } from './filter/index.ts'
import { invalid, queryValue, queryValues, type ReadParams, readParams } from './http.ts'
import type { AgentCheckView, AgentServiceView } from './local-agent.ts'

export type Query = Record<string, string | string[] | undefined>

// ---- shapes ----

export interface NodeView {
  ID: string
  Node: string
  Address: string
  Datacenter: string
  TaggedAddresses: Record<string, string>
  Meta: Record<string, string>
  CreateIndex: number
  ModifyIndex: number
}

/** A service on a node (Consul's NodeService): /catalog/node, health entries' `Service`. */
export interface NodeServiceView {
  ID: string
  Service: string
  Tags: string[]
  Address: string
  TaggedAddresses: Record<string, { Address: string; Port: number }>
  Meta: Record<string, string>
  Port: number
  Weights: { Passing: number; Warning: number }
  EnableTagOverride: boolean
  Kind: string
  CreateIndex: number
  ModifyIndex: number
}

/** /v1/catalog/service/:name entries (Consul's ServiceNode). */
export interface ServiceNodeView {
  ID: string
  Node: string
  Address: string
  Datacenter: string
  TaggedAddresses: Record<string, string>
  NodeMeta: Record<string, string>
  ServiceKind: string
  ServiceID: string
  ServiceName: string
  ServiceTags: string[]
  ServiceAddress: string
  ServiceTaggedAddresses: Record<string, { Address: string; Port: number }>
  ServiceWeights: { Passing: number; Warning: number }
  ServiceMeta: Record<string, string>
  ServicePort: number
  ServiceEnableTagOverride: boolean
  CreateIndex: number
  ModifyIndex: number
}

export interface CheckView {
  Node: string
  CheckID: string
  Name: string
  Status: string
  Notes: string
  Output: string
  ServiceID: string
  ServiceName: string
  ServiceTags: string[]
  Type: string
  Definition: Record<string, unknown>
  CreateIndex: number
  ModifyIndex: number
}

export interface HealthEntryView {
  Node: NodeView
  Service: NodeServiceView
  Checks: CheckView[]
}

// ---- renderers ----

export function renderNode(stored: Stored<NodeRecord>): NodeView {
  const n = stored.record
  return {
    ID: n.ID,
    Node: n.Node,
    Address: n.Address,
    Datacenter: n.Datacenter,
    TaggedAddresses: { ...n.TaggedAddresses },
    Meta: { ...n.Meta },
    CreateIndex: stored.createRevision,
    ModifyIndex: stored.modRevision,
  }
}

export function renderNodeService(stored: Stored<ServiceRecord>): NodeServiceView {
  const s = stored.record
  return {
    ID: s.ID,
    Service: s.Service,
    Tags: [...s.Tags],
    Address: s.Address,
    TaggedAddresses: copyTaggedAddresses(s.TaggedAddresses),
    Meta: { ...s.Meta },
    Port: s.Port,
    Weights: { Passing: s.Weights.Passing, Warning: s.Weights.Warning },
    EnableTagOverride: s.EnableTagOverride,
    Kind: s.Kind,
    CreateIndex: stored.createRevision,
    ModifyIndex: stored.modRevision,
  }
}

export function renderServiceNode(entry: ServiceEntry): ServiceNodeView {
  const n = entry.node.record
  const s = entry.service.record
  return {
    ID: n.ID,
    Node: n.Node,
    Address: n.Address,
    Datacenter: n.Datacenter,
    TaggedAddresses: { ...n.TaggedAddresses },
    NodeMeta: { ...n.Meta },
    ServiceKind: s.Kind,
    ServiceID: s.ID,
    ServiceName: s.Service,
    ServiceTags: [...s.Tags],
    ServiceAddress: s.Address,
    ServiceTaggedAddresses: copyTaggedAddresses(s.TaggedAddresses),
    ServiceWeights: { Passing: s.Weights.Passing, Warning: s.Weights.Warning },
    ServiceMeta: { ...s.Meta },
    ServicePort: s.Port,
    ServiceEnableTagOverride: s.EnableTagOverride,
    CreateIndex: entry.service.createRevision,
    ModifyIndex: entry.service.modRevision,
  }
}

export function renderCheck(check: HealthCheckView): CheckView {
  return {
    Node: check.Node,
    CheckID: check.CheckID,
    Name: check.Name,
    Status: check.Status,
    Notes: check.Notes,
    Output: check.Output,
    ServiceID: check.ServiceID,
    ServiceName: check.ServiceName,
    ServiceTags: [...check.ServiceTags],
    Type: check.Type,
    Definition: { ...check.Definition },
    CreateIndex: check.CreateIndex,
    ModifyIndex: check.ModifyIndex,
  }
}

export function renderHealthEntry(entry: ServiceEntry): HealthEntryView {
  return {
    Node: renderNode(entry.node),
    Service: renderNodeService(entry.service),
    Checks: entry.checks.map(renderCheck),
  }
}

/** /v1/agent/services values (Consul's AgentService). */
export function renderAgentService(view: AgentServiceView): Record<string, unknown> {
  return {
    ID: view.ID,
    Service: view.Service,
    Tags: [...view.Tags],
    Meta: { ...view.Meta },
    Port: view.Port,
    Address: view.Address,
    TaggedAddresses: copyTaggedAddresses(view.TaggedAddresses),
    Weights: { Passing: view.Weights.Passing, Warning: view.Weights.Warning },
    EnableTagOverride: view.EnableTagOverride,
    Kind: view.Kind,
    Datacenter: view.Datacenter,
  }
}

/** /v1/agent/checks values (Consul's AgentCheck). */
export function renderAgentCheck(view: AgentCheckView): Record<string, unknown> {
  return { Node: view.Node, ...renderCheckRecord(view) }
}

function renderCheckRecord(c: CheckRecord): Record<string, unknown> {
  return {
    CheckID: c.CheckID,
    Name: c.Name,
    Status: c.Status,
    Notes: c.Notes,
    Output: c.Output,
    ServiceID: c.ServiceID,
    ServiceName: c.ServiceName,
    ServiceTags: [...c.ServiceTags],
    Type: c.Type,
    Definition: { ...c.Definition },
  }
}

/**
 * decodeService checks only that TaggedAddresses is an object, so a record written by hand may
 * hold entries of another shape: those are left out rather than rendered half or thrown on.
 */
function copyTaggedAddresses(
  tagged: ServiceRecord['TaggedAddresses'],
): Record<string, { Address: string; Port: number }> {
  const out = ownMap<{ Address: string; Port: number }>()
  for (const [name, value] of Object.entries(tagged) as [string, unknown][]) {
    const entry = value as { Address?: unknown; Port?: unknown } | null
    if (typeof entry !== 'object' || entry === null) continue
    if (typeof entry.Address !== 'string' || typeof entry.Port !== 'number') continue
    out[name] = { Address: entry.Address, Port: entry.Port }
  }
  return out
}

/**
 * An object for keys that come from clients or records (ids, names, meta keys): without a
 * prototype, so a key such as `__proto__` is an ordinary entry, never a prototype change.
 */
export function ownMap<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>
}

// ---- selection ----

/** A compiled `?filter`; `undefined` stands for "no filter" (keeps everything). */
export interface EntryFilter {
  matches(value: unknown): boolean
}

/** Parses `?filter` against the endpoint's schema; a bad expression is CONSUL_FILTER_INVALID. */
export function compileFilter(text: string, fields: FieldSchema): EntryFilter | undefined {
  if (text === '') return undefined
  try {
    return parseFilter(text, { fields })
  } catch (error) {
    throw asFilterInvalid(error)
  }
}

/** The entries the filter keeps (all of them without a filter). */
export function applyFilter<T>(filter: EntryFilter | undefined, entries: T[]): T[] {
  if (filter === undefined) return entries
  try {
    return entries.filter((entry) => filter.matches(entry))
  } catch (error) {
    throw asFilterInvalid(error)
  }
}

/** Filters the values of a map answer (`/agent/services`, `/catalog/node`'s Services). */
export function applyFilterToMap<T>(
  filter: EntryFilter | undefined,
  map: Record<string, T>,
): Record<string, T> {
  if (filter === undefined) return map
  const out = ownMap<T>()
  try {
    for (const [key, value] of Object.entries(map)) if (filter.matches(value)) out[key] = value
  } catch (error) {
    throw asFilterInvalid(error)
  }
  return out
}

function asFilterInvalid(error: unknown): unknown {
  return isFilterError(error) ? new CairnError('CONSUL_FILTER_INVALID', error.message) : error
}

/** What every catalog and health list reads before its own parameters. */
export interface ListQuery {
  params: ReadParams
  filter: EntryFilter | undefined
  meta: [string, string][]
}

/** `?dc` checked, the blocking and consistency parameters, `?filter` compiled against `fields`, `?node-meta`. */
export function readListQuery(query: Query, deps: ConsulApiDeps, fields: FieldSchema): ListQuery {
  checkDatacenter(query, deps)
  const params = readParams(query)
  return { params, filter: compileFilter(params.filter, fields), meta: nodeMetaPairs(query) }
}

/** `?node-meta=key:value` (repeatable; every pair must match), as Consul's parseMetaFilter. */
export function nodeMetaPairs(query: Query): [string, string][] {
  return queryValues(query, 'node-meta').map((text) => {
    const colon = text.indexOf(':')
    return colon < 0 ? [text, ''] : [text.slice(0, colon), text.slice(colon + 1)]
  })
}

export function nodeMetaMatches(meta: Readonly<Record<string, string>>, pairs: [string, string][]): boolean {
  return pairs.every(([key, value]) => Object.hasOwn(meta, key) && meta[key] === value)
}

/** Whether the service carries every wanted tag (compared case-insensitively, as Consul does). */
export function hasTags(tags: readonly string[], wanted: readonly string[]): boolean {
  if (wanted.length === 0) return true
  const have = new Set(tags.map((t) => t.toLowerCase()))
  return wanted.every((t) => have.has(t.toLowerCase()))
}

/**
 * `?dc`: this agent serves its own datacenter only. Consul forwards to another datacenter or
 * answers 500 "No path to datacenter"; we answer 400, since it is the request that cannot be met.
 */
export function checkDatacenter(query: Query, deps: ConsulApiDeps): void {
  const dc = queryValue(query, 'dc')
  if (dc === undefined || dc === '' || dc.toLowerCase() === deps.datacenter.toLowerCase()) return
  throw invalid(`No path to datacenter ${JSON.stringify(dc.slice(0, 64))}`)
}

/** A boolean parameter as Go's strconv.ParseBool reads it; present with no value means true. */
export function queryBool(query: Query, name: string): boolean | undefined {
  const value = queryValue(query, name)
  if (value === undefined) return undefined
  const parsed = value === '' ? true : goBool(value)
  if (parsed === undefined) throw invalid(`Invalid value for ?${name}`)
  return parsed
}

/** Go's strconv.ParseBool; undefined for anything else. */
export function goBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false
  return undefined
}

/** The name after a route's prefix (Consul takes the rest of the path, slashes included). */
export function pathName(params: unknown, what: string): string {
  const name = (params as Record<string, string | undefined>)['*'] ?? ''
  if (name === '') throw invalid(`Missing ${what}`)
  return name
}

// ---- request bodies ----

/**
 * A JSON object of a request body, read as Go's encoding/json reads into a struct: keys match
 * case-insensitively (an exact match wins), and, as Consul's agent also accepts them, snake_case
 * keys match their CamelCase field (`node_meta` is `NodeMeta`). Unknown keys are ignored. A value
 * of the wrong type is a 400 naming the field; `null` reads as absent.
 */
export class BodyFields {
  readonly #object: Record<string, unknown>
  readonly #path: string
  readonly #byNormalized = new Map<string, string>()

  constructor(object: Record<string, unknown>, path = '') {
    this.#object = object
    this.#path = path
    for (const key of Object.keys(object)) {
      const normalized = normalizeKey(key)
      if (!this.#byNormalized.has(normalized)) this.#byNormalized.set(normalized, key)
    }
  }

  /** The body as an object, or a 400 (`what` names it). An empty body reads as `{}`. */
  static of(body: unknown, what = 'body'): BodyFields {
    if (body === undefined) return new BodyFields({})
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw invalid(`Request decode failed: the ${what} must be a JSON object`)
    }
    return new BodyFields(body as Record<string, unknown>)
  }

  /** The raw value of `name` (undefined when absent or null). */
  get(name: string): unknown {
    const key = Object.hasOwn(this.#object, name) ? name : this.#byNormalized.get(normalizeKey(name))
    const value = key === undefined ? undefined : this.#object[key]
    return value === null ? undefined : value
  }

  /** Whether any of `names` is present (not null). */
  has(...names: string[]): boolean {
    return names.some((name) => this.get(name) !== undefined)
  }

  name(field: string): string {
    return this.#path === '' ? field : `${this.#path}.${field}`
  }

  string(field: string): string | undefined {
    const value = this.get(field)
    if (value === undefined || typeof value === 'string') return value
    throw this.#wrongType(field, 'a string')
  }

  boolean(field: string): boolean | undefined {
    const value = this.get(field)
    if (value === undefined || typeof value === 'boolean') return value
    throw this.#wrongType(field, 'a boolean')
  }

  integer(field: string, min: number, max: number): number | undefined {
    const value = this.get(field)
    if (value === undefined) return undefined
    if (typeof value !== 'number' || !Number.isInteger(value)) throw this.#wrongType(field, 'an integer')
    if (value < min || value > max) {
      throw invalid(`Request decode failed: ${this.name(field)} must be between ${min} and ${max}`)
    }
    return value
  }

  stringList(field: string): string[] | undefined {
    const value = this.get(field)
    if (value === undefined) return undefined
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
      throw this.#wrongType(field, 'a list of strings')
    }
    return [...value] as string[]
  }

  stringMap(field: string): Record<string, string> | undefined {
    const value = this.get(field)
    if (value === undefined) return undefined
    if (typeof value !== 'object' || Array.isArray(value)) throw this.#wrongType(field, 'a map of strings')
    const out = ownMap<string>()
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (typeof v !== 'string') throw this.#wrongType(`${field}.${k}`, 'a string')
      out[k] = v
    }
    return out
  }

  object(field: string): BodyFields | undefined {
    const value = this.get(field)
    if (value === undefined) return undefined
    if (typeof value !== 'object' || Array.isArray(value)) throw this.#wrongType(field, 'an object')
    return new BodyFields(value as Record<string, unknown>, this.name(field))
  }

  /** A list of objects (each a BodyFields). */
  objectList(field: string): BodyFields[] | undefined {
    const value = this.get(field)
    if (value === undefined) return undefined
    if (!Array.isArray(value)) throw this.#wrongType(field, 'a list of objects')
    return value.map((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw this.#wrongType(`${field}[${i}]`, 'an object')
      }
      return new BodyFields(item as Record<string, unknown>, `${this.name(field)}[${i}]`)
    })
  }

  /** The keys present, as given. */
  keys(): string[] {
    return Object.keys(this.#object)
  }

  #wrongType(field: string, expected: string): CairnError {
    return invalid(`Request decode failed: ${this.name(field)} must be ${expected}`)
  }
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replaceAll('_', '')
}
