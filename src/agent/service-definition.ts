/**
 * One service registration body in Consul's JSON shape (PUT /v1/agent/service/register), parsed
 * and validated into the ServiceRecord the catalog stores plus the service's checks, each already
 * parsed by parseCheckDefinition (checks/definition.ts) with its ID, Name and ServiceID filled in.
 *
 * Invariants of a returned ServiceDefinition:
 * - `service` is a complete ServiceRecord within every limit below; its ID is short enough that
 *   `_service_maintenance:<ID>` and `service:<ID>:<n>` are still valid catalog names.
 * - `checks` are in body order (`Check` first, then `Checks`), at most serviceChecksMax, with
 *   distinct ids, none of them reserved (reservedCheckIdProblem), each with ServiceID = the ID.
 * - `checks[i].body` is what was given to parseCheckDefinition: parsing it again gives the same
 *   definition (the agent persists it and re-reads it at start).
 * Parsing is pure. A bad service field throws CATALOG_INVALID naming the field; a bad check throws
 * CHECK_INVALID naming `Check.<field>` or `Checks[<i>].<field>`. Nothing is changed either way.
 *
 * Keys are matched as Consul's agent matches them: CamelCase or snake_case (`EnableTagOverride`,
 * `enable_tag_override`, `enabletagoverride`), case-insensitively, also inside Weights and the
 * TaggedAddresses values; Meta keys and TaggedAddresses names are data and kept as given. Empty
 * values (`""`, `0`, `false`, `[]`, `{}`, `null`), which Go clients send for unused fields, count as
 * not given. An unknown key is refused; keys of features Cairn does not have (Connect, Proxy,
 * namespaces, ...) are refused when set.
 */
import { isIP } from 'node:net'
import { catalogNameBytesMax, nameProblem, type ServiceRecord, serviceRecord } from '../catalog/records.ts'
import { CairnError, errorCatalogue } from '../errors.ts'
import { type CheckDefinition, type ParseCheckOptions, parseCheckDefinition } from './checks/definition.ts'

/** The maintenance checks' ids (Consul's): `_service_maintenance:<service id>` and `_node_maintenance`. */
export const serviceMaintenanceCheckPrefix = '_service_maintenance:'
export const nodeMaintenanceCheckId = '_node_maintenance'
/** The machine check the catalog synthesizes (state.ts machineCheckId); never a local check. */
export const machineCheckIdReserved = 'serfHealth'

/**
 * Longest service ID in UTF-8 bytes: the catalog's name limit minus the maintenance prefix, so
 * the service's maintenance check id is still a valid catalog name (Consul has no limit).
 */
export const serviceIdBytesMax = catalogNameBytesMax - serviceMaintenanceCheckPrefix.length
/** Longest service Name in UTF-8 bytes. */
export const serviceNameBytesMax = catalogNameBytesMax
/** Tags per service. Consul has no limit; every check record of the service repeats them. */
export const serviceTagsMax = 64
/** One tag's length in UTF-8 bytes. */
export const tagBytesMax = 256
/** Meta pairs per service: Consul's metaMaxKeyPairs. */
export const serviceMetaMax = 64
/** One Meta key's length: Consul's metaKeyMaxLength. */
export const metaKeyBytesMax = 128
/** One Meta value's length: Consul's metaValueMaxLength. */
export const metaValueBytesMax = 512
/** Address and each tagged address, in UTF-8 bytes (a host name is at most 253 characters). */
export const addressBytesMax = 256
/** Entries of TaggedAddresses. */
export const taggedAddressesMax = 16
/** One TaggedAddresses name (`lan`, `wan`, `lan_ipv4`, ...), in UTF-8 bytes. */
export const taggedAddressNameBytesMax = 64
/**
 * Checks in one registration body (Check plus Checks), and on one service. A service is written
 * with its checks (and its maintenance check) in one store transaction of at most 128 operations.
 */
export const serviceChecksMax = 64
/** Weights are SRV weights: 16 bits. */
export const weightMax = 65_535

/** Consul's metaKeyFormat and reserved prefix. */
const metaKeyFormat = /^[a-zA-Z0-9_-]+$/
const metaKeyReservedPrefix = 'consul-'

export interface ServiceCheck {
  readonly definition: CheckDefinition
  /** The body given to parseCheckDefinition, ID, Name and ServiceID included. */
  readonly body: Record<string, unknown>
}

export interface ServiceDefinition {
  readonly service: ServiceRecord
  readonly checks: readonly ServiceCheck[]
  /** Values that were adjusted (a check's Interval raised to the minimum), for the caller to log. */
  readonly warnings: readonly string[]
}

/** Normalized key (lower case, no underscores) → the name used in messages. */
const knownFields = fieldMap([
  'ID',
  'Name',
  'Tags',
  'Address',
  'Port',
  'Meta',
  'Weights',
  'EnableTagOverride',
  'TaggedAddresses',
  'Kind',
  'Check',
  'Checks',
])

/** Fields of features Cairn does not have: refused when set. */
const unsupportedFields = fieldMap([
  'Proxy',
  'Connect',
  'SocketPath',
  'Namespace',
  'Partition',
  'Locality',
  'PeerName',
])

function fieldMap(names: readonly string[]): Map<string, string> {
  return new Map(names.map((name) => [normalizeKey(name), name]))
}

function normalizeKey(key: string): string {
  return key.replaceAll('_', '').toLowerCase()
}

function invalid(detail: string): CairnError {
  return new CairnError('CATALOG_INVALID', detail)
}

/** Consul's clients send empty values for fields they do not use; those count as not given. */
export function isUnset(value: unknown): boolean {
  if (value === undefined || value === null || value === '' || value === false || value === 0) return true
  if (Array.isArray(value)) return value.length === 0
  return typeof value === 'object' && Object.keys(value).length === 0
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8')
}

/** Maps an object's keys to canonical names from `known`, dropping unset values. */
function normalizeFields(
  input: Record<string, unknown>,
  known: Map<string, string>,
  where: string,
  unsupported: Map<string, string> = new Map(),
): Map<string, unknown> {
  const fields = new Map<string, unknown>()
  for (const [key, value] of Object.entries(input)) {
    const normalized = normalizeKey(key)
    const notSupported = unsupported.get(normalized)
    if (notSupported !== undefined) {
      if (isUnset(value)) continue
      throw invalid(`${where}${notSupported}: not supported (Cairn has no service mesh or namespaces)`)
    }
    const name = known.get(normalized)
    if (name === undefined) throw invalid(`${where}${key}: unknown field`)
    if (fields.has(name)) throw invalid(`${where}${key}: given twice`)
    if (!isUnset(value)) fields.set(name, value)
  }
  return fields
}

/** A control character (C0, DEL) in a name: it would break log lines and DNS labels. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}

function readName(value: unknown, field: string, bytesMax: number): string {
  if (value !== undefined && typeof value !== 'string') throw invalid(`${field}: expected a string`)
  const problem = nameProblem(value, field)
  if (problem !== undefined) throw invalid(problem)
  const text = value as string
  if (byteLength(text) > bytesMax) throw invalid(`${field}: longer than ${bytesMax} bytes`)
  if (hasControl(text)) throw invalid(`${field}: contains a control character`)
  return text
}

function readTags(value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw invalid('Tags: expected a list of strings')
  if (value.length > serviceTagsMax) throw invalid(`Tags: more than ${serviceTagsMax} tags`)
  return value.map((tag, i) => {
    if (typeof tag !== 'string') throw invalid(`Tags[${i}]: expected a string`)
    if (byteLength(tag) > tagBytesMax) throw invalid(`Tags[${i}]: longer than ${tagBytesMax} bytes`)
    return tag
  })
}

/** An address: a host name or an IP, never the unspecified address (no client can dial it). */
function readAddress(value: unknown, field: string): string {
  if (value === undefined) return ''
  if (typeof value !== 'string') throw invalid(`${field}: expected a string`)
  if (byteLength(value) > addressBytesMax) throw invalid(`${field}: longer than ${addressBytesMax} bytes`)
  if (hasControl(value) || /\s/.test(value))
    throw invalid(`${field}: contains whitespace or a control character`)
  if (isIP(value) !== 0 && (value === '0.0.0.0' || /^[0:]+$/.test(value))) {
    throw invalid(`${field}: the unspecified address ${value} cannot be dialled`)
  }
  return value
}

function readPort(value: unknown, field: string): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65_535) {
    throw invalid(`${field}: expected a whole number in 0..65535`)
  }
  return value
}

/** Consul's ValidateServiceMetadata: key format, lengths, pair count, the reserved prefix. */
function readMeta(value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (!isObject(value)) throw invalid('Meta: expected an object of string values')
  const entries = Object.entries(value)
  if (entries.length > serviceMetaMax) throw invalid(`Meta: more than ${serviceMetaMax} pairs`)
  const meta: Record<string, string> = {}
  for (const [key, v] of entries) {
    const shown = JSON.stringify(key.slice(0, 64))
    if (key === '') throw invalid('Meta: a key is empty')
    if (byteLength(key) > metaKeyBytesMax)
      throw invalid(`Meta: key ${shown} is longer than ${metaKeyBytesMax} bytes`)
    if (!metaKeyFormat.test(key))
      throw invalid(`Meta: key ${shown} may only hold letters, digits, "_" and "-"`)
    if (key.startsWith(metaKeyReservedPrefix)) {
      throw invalid(`Meta: key ${shown}: the prefix "${metaKeyReservedPrefix}" is reserved`)
    }
    if (typeof v !== 'string') throw invalid(`Meta.${key}: expected a string`)
    if (byteLength(v) > metaValueBytesMax)
      throw invalid(`Meta.${key}: longer than ${metaValueBytesMax} bytes`)
    meta[key] = v
  }
  return meta
}

const weightFields = fieldMap(['Passing', 'Warning'])

/** Consul's ValidateWeights: Passing at least 1, Warning at least 0; absent Weights are {1, 1}. */
function readWeights(value: unknown): { Passing: number; Warning: number } {
  if (value === undefined) return { Passing: 1, Warning: 1 }
  if (!isObject(value)) throw invalid('Weights: expected an object {Passing, Warning}')
  const fields = normalizeFields(value, weightFields, 'Weights.')
  const read = (name: string, min: number): number => {
    const v = fields.get(name) ?? 0
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > weightMax) {
      throw invalid(`Weights.${name}: expected a whole number in ${min}..${weightMax}`)
    }
    return v
  }
  return { Passing: read('Passing', 1), Warning: read('Warning', 0) }
}

const taggedAddressFields = fieldMap(['Address', 'Port'])

function readTaggedAddresses(value: unknown): ServiceRecord['TaggedAddresses'] {
  if (value === undefined) return {}
  if (!isObject(value)) throw invalid('TaggedAddresses: expected an object of name to {Address, Port}')
  const entries = Object.entries(value)
  if (entries.length > taggedAddressesMax)
    throw invalid(`TaggedAddresses: more than ${taggedAddressesMax} names`)
  const out: ServiceRecord['TaggedAddresses'] = {}
  for (const [name, entry] of entries) {
    const where = `TaggedAddresses.${name}`
    if (name === '' || byteLength(name) > taggedAddressNameBytesMax || hasControl(name)) {
      throw invalid(
        `TaggedAddresses: name ${JSON.stringify(name.slice(0, 64))} is empty, too long or has a control character`,
      )
    }
    if (!isObject(entry)) throw invalid(`${where}: expected an object {Address, Port}`)
    const fields = normalizeFields(entry, taggedAddressFields, `${where}.`)
    const address = readAddress(fields.get('Address'), `${where}.Address`)
    if (address === '') throw invalid(`${where}.Address: required`)
    out[name] = { Address: address, Port: readPort(fields.get('Port'), `${where}.Port`) }
  }
  return out
}

function readBoolean(value: unknown, field: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw invalid(`${field}: expected true or false`)
  return value
}

function readKind(value: unknown): string {
  if (value === undefined) return ''
  if (typeof value !== 'string') throw invalid('Kind: expected a string')
  throw invalid(
    `Kind: only typical services (no Kind) are supported; ${JSON.stringify(value.slice(0, 64))} is a service mesh kind`,
  )
}

/** Why `id` may not be a check registered on an agent, or undefined when it may. */
export function reservedCheckIdProblem(id: string): string | undefined {
  if (id === machineCheckIdReserved) return `${id} is the catalog's machine check`
  if (id === nodeMaintenanceCheckId || id.startsWith(serviceMaintenanceCheckPrefix)) {
    return `${id} is reserved for maintenance mode (use the maintenance endpoints)`
  }
  return undefined
}

/** The message of a CairnError without the catalogue's text in front, to re-wrap it with a path. */
function detailOf(error: CairnError): string {
  const prefix = `${errorCatalogue[error.code]}: `
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message
}

function checkInvalid(where: string, detail: string): CairnError {
  return new CairnError('CHECK_INVALID', `${where}.${detail}`)
}

const checkIdentityKeys = new Set(['id', 'checkid', 'name', 'serviceid'])

/** A check of the body with its ID, Name and ServiceID decided (Consul's AddService rules). */
function checkBody(
  input: unknown,
  where: string,
  service: ServiceRecord,
  position: number,
  count: number,
): Record<string, unknown> {
  if (!isObject(input)) throw new CairnError('CHECK_INVALID', `${where}: expected a JSON object`)
  const rest: Record<string, unknown> = {}
  const given = new Map<string, unknown>()
  for (const [key, value] of Object.entries(input)) {
    const normalized = normalizeKey(key)
    if (!checkIdentityKeys.has(normalized)) rest[key] = value
    else if (!isUnset(value)) {
      if (given.has(normalized)) throw checkInvalid(where, `${key}: given twice`)
      given.set(normalized, value)
    }
  }
  const id = given.get('id')
  const checkId = given.get('checkid')
  if (id !== undefined && checkId !== undefined && id !== checkId)
    throw checkInvalid(where, 'CheckID: differs from ID')
  const serviceId = given.get('serviceid')
  if (serviceId !== undefined && serviceId !== service.ID) {
    throw checkInvalid(where, `ServiceID: ${JSON.stringify(serviceId)} differs from the service's ID`)
  }
  const defaultId = count > 1 ? `service:${service.ID}:${position}` : `service:${service.ID}`
  return {
    ...rest,
    ID: id ?? checkId ?? defaultId,
    Name: given.get('name') ?? `Service '${service.Service}' check`,
    ServiceID: service.ID,
  }
}

function readChecks(
  fields: Map<string, unknown>,
  service: ServiceRecord,
  options: ParseCheckOptions,
  warnings: string[],
): ServiceCheck[] {
  const inputs: [string, unknown][] = []
  if (fields.has('Check')) inputs.push(['Check', fields.get('Check')])
  const list = fields.get('Checks')
  if (list !== undefined) {
    if (!Array.isArray(list)) throw new CairnError('CHECK_INVALID', 'Checks: expected a list of checks')
    for (const [i, c] of list.entries()) inputs.push([`Checks[${i}]`, c])
  }
  if (inputs.length > serviceChecksMax) {
    throw invalid(`Check, Checks: more than ${serviceChecksMax} checks on one service (serviceChecksMax)`)
  }
  const seen = new Set<string>()
  return inputs.map(([where, input], i) => {
    const body = checkBody(input, where, service, i + 1, inputs.length)
    let parsed: ReturnType<typeof parseCheckDefinition>
    try {
      parsed = parseCheckDefinition(body, options)
    } catch (error) {
      if (error instanceof CairnError) throw checkInvalid(where, detailOf(error))
      throw error
    }
    const definition = parsed.definition
    const reserved = reservedCheckIdProblem(definition.id)
    if (reserved !== undefined) throw checkInvalid(where, `ID: ${reserved}`)
    if (seen.has(definition.id))
      throw checkInvalid(where, `ID: ${JSON.stringify(definition.id)} is used twice`)
    seen.add(definition.id)
    for (const warning of parsed.warnings) warnings.push(`${where}: ${warning}`)
    return { definition, body }
  })
}

/** Parses and validates one registration body; throws CATALOG_INVALID or CHECK_INVALID. */
export function parseServiceDefinition(input: unknown, options: ParseCheckOptions = {}): ServiceDefinition {
  if (!isObject(input)) throw invalid('expected a JSON object')
  const fields = normalizeFields(input, knownFields, '', unsupportedFields)
  const name = readName(fields.get('Name'), 'Name', serviceNameBytesMax)
  const id = fields.has('ID') ? readName(fields.get('ID'), 'ID', serviceIdBytesMax) : name
  if (byteLength(id) > serviceIdBytesMax)
    throw invalid(`ID (from Name): longer than ${serviceIdBytesMax} bytes`)
  const service = serviceRecord({
    ID: id,
    Service: name,
    Tags: readTags(fields.get('Tags')),
    Address: readAddress(fields.get('Address'), 'Address'),
    TaggedAddresses: readTaggedAddresses(fields.get('TaggedAddresses')),
    Meta: readMeta(fields.get('Meta')),
    Port: readPort(fields.get('Port'), 'Port'),
    Weights: readWeights(fields.get('Weights')),
    EnableTagOverride: readBoolean(fields.get('EnableTagOverride'), 'EnableTagOverride'),
    Kind: readKind(fields.get('Kind')),
  })
  const warnings: string[] = []
  const checks = readChecks(fields, service, options, warnings)
  return { service, checks, warnings }
}

/** The registration body of a service record (without checks): parsing it gives the record back. */
export function serviceBody(record: ServiceRecord): Record<string, unknown> {
  return {
    ID: record.ID,
    Name: record.Service,
    Tags: [...record.Tags],
    Address: record.Address,
    TaggedAddresses: structuredClone(record.TaggedAddresses),
    Meta: { ...record.Meta },
    Port: record.Port,
    Weights: { ...record.Weights },
    EnableTagOverride: record.EnableTagOverride,
    Kind: record.Kind,
  }
}
