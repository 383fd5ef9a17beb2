/**
 * The Consul v1 catalog endpoints (consul docs api-docs/catalog.mdx; reference A2):
 *
 *   PUT /v1/catalog/register            body: Node, Address, Service, Check/Checks ...  → true
 *   PUT /v1/catalog/deregister          body: Node [+ ServiceID | CheckID]               → true
 *   GET /v1/catalog/datacenters         [datacenter]
 *   GET /v1/catalog/nodes               blocking; node-meta, filter
 *   GET /v1/catalog/services            blocking; node-meta, filter           {name: [tags]}
 *   GET /v1/catalog/service/:name       blocking; tag (repeatable, AND), node-meta, filter
 *   GET /v1/catalog/node/:node          blocking; filter (on Services)   null when unknown
 *   GET /v1/catalog/node-services/:node blocking; filter                 {Node, Services: []}
 *
 * Reads answer from the agent's CatalogState through answerCatalogQuery (blocking.ts), so
 * `index`, `wait`, `stale` and `consistent` mean the same on every endpoint. Writes go through the
 * CatalogWriter as one store transaction each: a request is checked whole before anything is
 * written, so a 4xx changes nothing.
 *
 * Registering through the catalog never makes a node an agent node: `Agent` stays as stored
 * (false for a new node), so a node registered by hand has no machine check, while re-registering
 * an agent's own node keeps its liveness.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { formatDurationNs, readDurationNs } from '../../catalog/durations.ts'
import {
  type CheckRecord,
  type CheckStatus,
  checkRecord,
  nameProblem,
  nodeRecord,
  type ServiceRecord,
  serviceRecord,
} from '../../catalog/records.ts'
import type { Registration } from '../../catalog/writer.ts'
import { answerCatalogQuery } from './blocking.ts'
import type { ConsulApiDeps } from './deps.ts'
import { type FieldSchema, healthEntrySchema, nodeSchema, serviceNodeSchema } from './filter/index.ts'
import { invalid, jsonBody, queryValues } from './http.ts'
import {
  applyFilter,
  BodyFields,
  checkDatacenter,
  hasTags,
  type NodeServiceView,
  nodeMetaMatches,
  ownMap,
  pathName,
  type Query,
  readListQuery,
  renderNode,
  renderNodeService,
  renderServiceNode,
} from './render.ts'

/** Metadata limits, Consul's own (structs.ValidateMetadata): pairs, key and value length. */
export const metaPairsMax = 64
export const metaKeyCharsMax = 128
export const metaValueCharsMax = 512
/** Tags of one service, and tagged addresses of a node or service (Consul sets no limit). */
export const tagsMax = 256
export const taggedAddressesMax = 64
/** Checks in one register request: with the node and the service, well inside the txn's 128 ops. */
export const checksPerRegisterMax = 64
/** Longest node or service address, in UTF-8 bytes. */
export const addressBytesMax = 256

/** The fields of a service on a node (`Service` of a health entry), for filters on NodeServices. */
export const nodeServiceSchema: FieldSchema = (healthEntrySchema.Service as { object: FieldSchema }).object

export function registerCatalogRoutes(app: FastifyInstance, deps: ConsulApiDeps, closing: AbortSignal): void {
  app.put('/v1/catalog/register', async (request, reply) => {
    checkDatacenter(request.query as Query, deps)
    const registration = parseRegistration(jsonBody(request.body), deps)
    await deps.writer.register(registration)
    return reply.send(true)
  })
  app.put('/v1/catalog/deregister', async (request, reply) => {
    checkDatacenter(request.query as Query, deps)
    const body = BodyFields.of(jsonBody(request.body))
    checkBodyDatacenter(body, deps)
    const node = body.string('Node') ?? ''
    if (node === '') throw invalid('Must provide node')
    const serviceId = body.string('ServiceID') ?? ''
    const checkId = body.string('CheckID') ?? ''
    for (const [value, what] of [
      [node, 'Node'],
      [serviceId, 'ServiceID'],
      [checkId, 'CheckID'],
    ] as const) {
      if (value !== '') checkName(value, what)
    }
    if (serviceId !== '') await deps.writer.deregisterService(node, serviceId)
    if (checkId !== '') await deps.writer.deregisterCheck(node, checkId)
    if (serviceId === '' && checkId === '') await deps.writer.deregisterNode(node)
    return reply.send(true)
  })
  app.get('/v1/catalog/datacenters', async (_request, reply) => reply.send([deps.datacenter]))
  app.get('/v1/catalog/nodes', (request, reply) => catalogNodes(request, reply, deps, closing))
  app.get('/v1/catalog/services', (request, reply) => catalogServices(request, reply, deps, closing))
  app.get('/v1/catalog/service/*', (request, reply) => catalogService(request, reply, deps, closing))
  app.get('/v1/catalog/node/*', (request, reply) => catalogNode(request, reply, deps, closing, 'map'))
  app.get('/v1/catalog/node-services/*', (request, reply) =>
    catalogNode(request, reply, deps, closing, 'list'),
  )
}

// ---- reads ----

async function catalogNodes(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const query = request.query as Query
  const { params, filter, meta } = readListQuery(query, deps, nodeSchema)
  const compute = () =>
    applyFilter(
      filter,
      deps.catalog
        .nodes()
        .filter((node) => nodeMetaMatches(node.record.Meta, meta))
        .map(renderNode),
    )
  return answerCatalogQuery(request, reply, deps, params, { topics: ['nodes'], compute }, closing)
}

async function catalogServices(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const query = request.query as Query
  const { params, filter, meta } = readListQuery(query, deps, serviceNodeSchema)
  const selective = filter !== undefined || meta.length > 0
  const compute = (): Record<string, string[]> => {
    const names = deps.catalog.serviceNames()
    if (!selective) return Object.assign(ownMap<string[]>(), Object.fromEntries(names))
    const out = ownMap<string[]>()
    for (const name of names.keys()) {
      const entries = deps.catalog
        .serviceEntries(name)
        .filter((e) => e.service.record.Service === name && nodeMetaMatches(e.node.record.Meta, meta))
      const kept = applyFilter(filter, entries.map(renderServiceNode))
      if (kept.length === 0) continue
      out[name] = [...new Set(kept.flatMap((e) => e.ServiceTags))].sort()
    }
    return out
  }
  // A node's metadata or address shows through node-meta and filter but does not touch `services`.
  const topics = selective ? ['services', 'nodes'] : ['services']
  return answerCatalogQuery(request, reply, deps, params, { topics, compute }, closing)
}

async function catalogService(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const query = request.query as Query
  const { params, filter, meta } = readListQuery(query, deps, serviceNodeSchema)
  const name = pathName(request.params, 'service name')
  const tags = queryValues(query, 'tag')
  const compute = () =>
    applyFilter(
      filter,
      deps.catalog
        .serviceEntries(name)
        .filter((e) => hasTags(e.service.record.Tags, tags) && nodeMetaMatches(e.node.record.Meta, meta))
        .map(renderServiceNode),
    )
  const topics = [`service:${name.toLowerCase()}`]
  return answerCatalogQuery(request, reply, deps, params, { topics, compute }, closing)
}

/** /catalog/node/:node (`map`: Services by id, null for an unknown node) and /node-services (`list`). */
async function catalogNode(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
  shape: 'map' | 'list',
): Promise<FastifyReply> {
  const query = request.query as Query
  const { params, filter } = readListQuery(query, deps, nodeServiceSchema)
  const name = pathName(request.params, 'node name')
  const compute = (): unknown => {
    const node = deps.catalog.nodeEntry(name)
    if (node === undefined) return shape === 'map' ? null : { Node: null, Services: null }
    const services = applyFilter(filter, deps.catalog.nodeServices(name).map(renderNodeService))
    if (shape === 'list') return { Node: renderNode(node), Services: services }
    const byId = ownMap<NodeServiceView>()
    for (const service of services) byId[service.ID] = service
    return { Node: renderNode(node), Services: byId }
  }
  const topics = [`node:${name.toLowerCase()}`]
  return answerCatalogQuery(request, reply, deps, params, { topics, compute }, closing)
}

// ---- register ----

/** Reads and checks a register body whole; throws a 400 before anything is written. */
export function parseRegistration(body: unknown, deps: ConsulApiDeps): Registration {
  const fields = BodyFields.of(body)
  checkBodyDatacenter(fields, deps)
  const name = fields.string('Node') ?? ''
  if (name === '') throw invalid('Must provide node')
  checkName(name, 'Node')
  const stored = deps.catalog.nodeEntry(name)
  const skipNodeUpdate = (fields.boolean('SkipNodeUpdate') ?? false) && stored !== undefined
  const address = fields.string('Address') ?? ''
  if (address === '' && !skipNodeUpdate) throw invalid('Must provide address if SkipNodeUpdate is not set')
  checkAddress(address, 'Address')
  const id = fields.string('ID') ?? ''
  if (id !== '' && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw invalid(`Bad node ID: ${JSON.stringify(id.slice(0, 64))} is not a UUID`)
  }
  const node = nodeRecord({
    ID: id,
    Node: name,
    Address: address,
    Datacenter: deps.datacenter,
    TaggedAddresses: checkTaggedAddresses(fields.stringMap('TaggedAddresses') ?? {}, 'TaggedAddresses'),
    Meta: checkMeta(fields.stringMap('NodeMeta') ?? {}, 'NodeMeta'),
    Agent: stored?.record.Agent ?? false,
  })
  const serviceFields = fields.object('Service')
  const service = serviceFields === undefined ? undefined : parseService(serviceFields)
  const single = fields.object('Check')
  const checkFields = [...(single === undefined ? [] : [single]), ...(fields.objectList('Checks') ?? [])]
  if (checkFields.length > checksPerRegisterMax) {
    throw invalid(`at most ${checksPerRegisterMax} checks per registration`)
  }
  const checks = checkFields.map((c) => parseCheck(c, name, service, deps))
  return { node, skipNodeUpdate, services: service === undefined ? [] : [service], checks }
}

function parseService(fields: BodyFields): ServiceRecord {
  const name = fields.string('Service') ?? ''
  const id = fields.string('ID') || name
  if (name === '') throw invalid('Must provide service name (Service.Service)')
  checkName(id, 'Service.ID')
  checkName(name, 'Service.Service')
  const tags = fields.stringList('Tags') ?? []
  if (tags.length > tagsMax) throw invalid(`Service.Tags: at most ${tagsMax} tags`)
  const address = fields.string('Address') ?? ''
  checkAddress(address, 'Service.Address')
  const weights = fields.object('Weights')
  const passing = weights?.integer('Passing', 1, 65535) ?? 1
  const warning = weights?.integer('Warning', 0, 65535) ?? 1
  return serviceRecord({
    ID: id,
    Service: name,
    Tags: tags,
    Address: address,
    TaggedAddresses: parseServiceTaggedAddresses(fields),
    Meta: checkMeta(fields.stringMap('Meta') ?? {}, 'Service.Meta'),
    Port: fields.integer('Port', 0, 65535) ?? 0,
    Weights: { Passing: passing, Warning: warning },
    EnableTagOverride: fields.boolean('EnableTagOverride') ?? false,
  })
}

function parseServiceTaggedAddresses(fields: BodyFields): ServiceRecord['TaggedAddresses'] {
  const tagged = fields.object('TaggedAddresses')
  if (tagged === undefined) return {}
  const keys = tagged.keys()
  if (keys.length > taggedAddressesMax) {
    throw invalid(`Service.TaggedAddresses: at most ${taggedAddressesMax} entries`)
  }
  const out: ServiceRecord['TaggedAddresses'] = ownMap()
  for (const key of keys) {
    const entry = tagged.object(key)
    if (entry === undefined) continue
    const address = entry.string('Address') ?? ''
    checkAddress(address, entry.name('Address'))
    out[key] = { Address: address, Port: entry.integer('Port', 0, 65535) ?? 0 }
  }
  return out
}

const checkStatuses: readonly string[] = ['passing', 'warning', 'critical']

function parseCheck(
  fields: BodyFields,
  node: string,
  service: ServiceRecord | undefined,
  deps: ConsulApiDeps,
): CheckRecord {
  const checkNode = fields.string('Node') ?? ''
  if (checkNode !== '' && checkNode.toLowerCase() !== node.toLowerCase()) {
    throw invalid(
      `${fields.name('Node')} ${JSON.stringify(checkNode)} does not match Node ${JSON.stringify(node)}`,
    )
  }
  const name = fields.string('Name') ?? ''
  const id = fields.string('CheckID') || name
  if (id === '') throw invalid(`${fields.name('CheckID')}: must provide a check ID or a name`)
  checkName(id, fields.name('CheckID'))
  const status = fields.string('Status') || 'critical'
  if (!checkStatuses.includes(status)) {
    throw invalid(`${fields.name('Status')}: invalid check status ${JSON.stringify(status.slice(0, 64))}`)
  }
  const serviceId = fields.string('ServiceID') ?? ''
  let owner: ServiceRecord | undefined
  if (serviceId !== '') {
    owner =
      service?.ID === serviceId
        ? service
        : deps.catalog.nodeServices(node).find((s) => s.record.ID === serviceId)?.record
    if (owner === undefined) {
      throw invalid(`${fields.name('ServiceID')}: service ${JSON.stringify(serviceId)} is not registered`)
    }
  }
  const definition = parseDefinition(fields.object('Definition'))
  return checkRecord({
    CheckID: id,
    Name: name || id,
    Status: status as CheckStatus,
    Notes: fields.string('Notes') ?? '',
    Output: fields.string('Output') ?? '',
    ServiceID: serviceId,
    ServiceName: owner?.Service ?? '',
    ServiceTags: owner === undefined ? [] : [...owner.Tags],
    Type: definition.HTTP !== undefined ? 'http' : definition.TCP !== undefined ? 'tcp' : '',
    Definition: definition,
  })
}

/** Consul's HealthCheckDefinition fields we keep, by kind; other keys are ignored, as Consul does. */
const definitionStrings = ['HTTP', 'Method', 'Body', 'TLSServerName', 'TCP', 'GRPC'] as const
const definitionBooleans = ['TLSSkipVerify', 'GRPCUseTLS'] as const
const definitionDurations = ['Interval', 'Timeout', 'DeregisterCriticalServiceAfter'] as const

/** The definition as display data: known fields only, durations written as Go prints them. */
function parseDefinition(fields: BodyFields | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (fields === undefined) return out
  for (const key of definitionStrings) {
    const value = fields.string(key)
    if (value !== undefined) out[key] = value
  }
  for (const key of definitionBooleans) {
    const value = fields.boolean(key)
    if (value !== undefined) out[key] = value
  }
  for (const key of definitionDurations) {
    const value = fields.get(key)
    if (value === undefined) continue
    out[key] = formatDurationNs(readDurationNs(value, fields.name(key), 'CONSUL_REQUEST_INVALID'))
  }
  const header = fields.object('Header')
  if (header !== undefined) {
    const headers = ownMap<string[]>()
    for (const key of header.keys()) headers[key] = header.stringList(key) ?? []
    out.Header = headers
  }
  return out
}

// ---- checks shared by register and deregister ----

function checkBodyDatacenter(fields: BodyFields, deps: ConsulApiDeps): void {
  const dc = fields.string('Datacenter') ?? ''
  if (dc !== '' && dc.toLowerCase() !== deps.datacenter.toLowerCase()) {
    throw invalid(`No path to datacenter ${JSON.stringify(dc.slice(0, 64))}`)
  }
}

function checkName(name: string, what: string): void {
  const problem = nameProblem(name, what)
  if (problem !== undefined) throw invalid(problem)
}

function checkAddress(address: string, what: string): void {
  if (Buffer.byteLength(address) > addressBytesMax) {
    throw invalid(`${what} is longer than ${addressBytesMax} bytes`)
  }
}

function checkTaggedAddresses(tagged: Record<string, string>, what: string): Record<string, string> {
  const entries = Object.entries(tagged)
  if (entries.length > taggedAddressesMax) throw invalid(`${what}: at most ${taggedAddressesMax} entries`)
  for (const [key, address] of entries) checkAddress(address, `${what}.${key}`)
  return tagged
}

/** Consul's metadata rules (structs.ValidateMetadata). */
function checkMeta(meta: Record<string, string>, what: string): Record<string, string> {
  const entries = Object.entries(meta)
  if (entries.length > metaPairsMax) {
    throw invalid(`${what} cannot contain more than ${metaPairsMax} key/value pairs`)
  }
  for (const [key, value] of entries) {
    const where = `${what} key ${JSON.stringify(key.slice(0, 64))}`
    if (key === '') throw invalid(`${what}: Key cannot be blank`)
    if (key.length > metaKeyCharsMax)
      throw invalid(`${where}: Key is too long (limit: ${metaKeyCharsMax} characters)`)
    if (!/^[a-zA-Z0-9_-]+$/.test(key)) throw invalid(`${where}: Key contains invalid characters`)
    if (key.startsWith('consul-'))
      throw invalid(`${where}: Key prefix 'consul-' is reserved for internal use`)
    if (value.length > metaValueCharsMax) {
      throw invalid(`${where}: Value is too long (limit: ${metaValueCharsMax} characters)`)
    }
  }
  return meta
}
