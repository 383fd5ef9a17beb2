/**
 * One health-check definition in Consul's JSON shape (PUT /v1/agent/check/register, or a service's
 * Check/Checks), parsed and validated into a CheckDefinition the runner can use as is.
 *
 * Invariants of a returned CheckDefinition:
 * - It has exactly one kind (http, tcp, script, ttl) and only that kind's fields.
 * - HTTP, TCP and script checks have intervalMs in intervalMsMin..timerMsMax and timeoutMs in
 *   (0, timerMsMax]; TTL checks have ttlMs in (0, timerMsMax].
 * - Every string and list is within its named limit (limits.ts); outputBytesMax is 1..outputBytesMaxLimit.
 * - A script check exists only if the caller passed enableScriptChecks.
 * Parsing is pure: a bad definition throws CHECK_INVALID naming the field, and nothing is changed.
 * Values Consul would silently raise (a short Interval, a short DeregisterCriticalServiceAfter)
 * are raised too, and reported in `warnings` for the caller to log.
 *
 * Keys are matched as Consul's agent matches them: CamelCase or snake_case (`CheckID`, `check_id`,
 * `checkid`), case-insensitively. An unknown key is refused; a key of a kind Cairn does not run yet
 * (GRPC, H2PING, Docker, alias, UDP, OS service, TLS options) is refused when it is set.
 */

import { readDurationMs } from '../../catalog/durations.ts'
import { CairnError } from '../../errors.ts'
import {
  argsBytesMax,
  argsMax,
  bodyBytesMax,
  consecutiveResultsMax,
  deregisterCriticalAfterMsMin,
  headerBytesMax,
  headersMax,
  hostBytesMax,
  idBytesMax,
  intervalMsMinDefault,
  methodBytesMax,
  notesBytesMax,
  outputBytesDefault,
  outputBytesMaxLimit,
  timeoutMsDefault,
  timerMsMax,
  urlBytesMax,
} from './limits.ts'

export type CheckStatus = 'passing' | 'warning' | 'critical'
export const checkStatuses: readonly CheckStatus[] = ['passing', 'warning', 'critical']

interface CheckCommon {
  readonly id: string
  readonly name: string
  /** '' for a node-level check. */
  readonly serviceId: string
  readonly notes: string
  /** The status before the first result (Consul's Status; default critical). */
  readonly status: CheckStatus
  readonly outputBytesMax: number
  /** Undefined when the service is never deregistered for being critical. */
  readonly deregisterCriticalAfterMs: number | undefined
}

/** Fields of the kinds that run on an interval. */
interface IntervalCheck {
  readonly intervalMs: number
  readonly timeoutMs: number
  /** Consecutive passing/warning results needed to leave critical (0 and 1: the first). */
  readonly successBeforePassing: number
  /** Consecutive critical results needed to become critical (0 and 1: the first). */
  readonly failuresBeforeCritical: number
}

export interface HttpCheckSpec extends IntervalCheck {
  readonly kind: 'http'
  readonly url: string
  readonly method: string
  readonly headers: Readonly<Record<string, readonly string[]>>
  readonly body: string
  readonly disableRedirects: boolean
}

export interface TcpCheckSpec extends IntervalCheck {
  readonly kind: 'tcp'
  readonly host: string
  readonly port: number
}

export interface ScriptCheckSpec extends IntervalCheck {
  readonly kind: 'script'
  /** The program and its arguments, run without a shell. */
  readonly args: readonly string[]
}

export interface TtlCheckSpec {
  readonly kind: 'ttl'
  readonly ttlMs: number
}

export type CheckDefinition = CheckCommon & (HttpCheckSpec | TcpCheckSpec | ScriptCheckSpec | TtlCheckSpec)

export interface ParseCheckOptions {
  /** Script checks run arbitrary commands; they are refused unless this is set. */
  enableScriptChecks?: boolean
  /** Shorter Intervals are raised to this; default intervalMsMinDefault (1 s). */
  intervalMsMin?: number
}

export interface ParsedCheck {
  readonly definition: CheckDefinition
  /** Values that were adjusted (raised to a minimum), for the caller to log. */
  readonly warnings: readonly string[]
}

/** Normalized key (lower case, no underscores) → the name used in messages. */
const knownFields = new Map<string, string>(
  [
    'ID',
    'CheckID',
    'Name',
    'ServiceID',
    'Notes',
    'Status',
    'Interval',
    'Timeout',
    'HTTP',
    'Method',
    'Header',
    'Body',
    'DisableRedirects',
    'TCP',
    'TTL',
    'Args',
    'ScriptArgs',
    'SuccessBeforePassing',
    'FailuresBeforeCritical',
    'OutputMaxSize',
    'DeregisterCriticalServiceAfter',
  ].map((name) => [name.toLowerCase(), name]),
)

/** Fields of check kinds and options Cairn does not support yet: refused when set. */
const unsupportedFields = new Map<string, string>(
  [
    'Script',
    'DockerContainerID',
    'Shell',
    'GRPC',
    'GRPCUseTLS',
    'H2PING',
    'H2PingUseTLS',
    'AliasNode',
    'AliasService',
    'UDP',
    'OSService',
    'TLSServerName',
    'TLSSkipVerify',
    'TCPUseTLS',
    'FailuresBeforeWarning',
    'Namespace',
    'Partition',
  ].map((name) => [name.toLowerCase(), name]),
)

const kindFields: Record<string, readonly string[]> = {
  http: ['Method', 'Header', 'Body', 'DisableRedirects'],
  interval: ['Interval', 'Timeout', 'SuccessBeforePassing', 'FailuresBeforeCritical'],
}

function invalid(detail: string): CairnError {
  return new CairnError('CHECK_INVALID', detail)
}

/** Consul's clients send empty values for fields they do not use; those count as not given. */
function isUnset(value: unknown): boolean {
  if (value === undefined || value === null || value === '' || value === false || value === 0) return true
  if (Array.isArray(value)) return value.length === 0
  return typeof value === 'object' && Object.keys(value).length === 0
}

/** Maps the input's keys to canonical field names, dropping unset values. */
function normalizeFields(input: unknown): Map<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('expected a JSON object')
  }
  const fields = new Map<string, unknown>()
  for (const [key, value] of Object.entries(input)) {
    const normalized = key.replaceAll('_', '').toLowerCase()
    const unsupported = unsupportedFields.get(normalized)
    if (unsupported !== undefined) {
      if (isUnset(value)) continue
      throw invalid(`${unsupported}: not supported yet (HTTP, TCP, TTL and script checks are)`)
    }
    const name = knownFields.get(normalized)
    if (name === undefined) throw invalid(`${key}: unknown field`)
    if (fields.has(name)) throw invalid(`${key}: given twice`)
    if (!isUnset(value) || name === 'Status') fields.set(name, value)
  }
  for (const [alias, name] of [
    ['CheckID', 'ID'],
    ['ScriptArgs', 'Args'],
  ] as const) {
    if (!fields.has(alias)) continue
    if (fields.has(name) && JSON.stringify(fields.get(name)) !== JSON.stringify(fields.get(alias))) {
      throw invalid(`${alias}: differs from ${name}`)
    }
    fields.set(name, fields.get(alias))
    fields.delete(alias)
  }
  return fields
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8')
}

function readString(fields: Map<string, unknown>, name: string, bytesMax: number): string | undefined {
  const value = fields.get(name)
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw invalid(`${name}: expected a string`)
  if (byteLength(value) > bytesMax) throw invalid(`${name}: longer than ${bytesMax} bytes`)
  return value
}

function readCount(fields: Map<string, unknown>, name: string, max: number): number {
  const value = fields.get(name) ?? 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(`${name}: expected a whole number in 0..${max}`)
  }
  return value
}

function readStatus(fields: Map<string, unknown>): CheckStatus {
  const value = fields.get('Status')
  if (value === undefined || value === null || value === '') return 'critical'
  if (!checkStatuses.includes(value as CheckStatus)) {
    throw invalid(`Status: expected passing, warning or critical, got ${JSON.stringify(value)}`)
  }
  return value as CheckStatus
}

function readCommon(fields: Map<string, unknown>, warnings: string[]): CheckCommon {
  const name = readString(fields, 'Name', idBytesMax)
  if (name === undefined || name.trim() === '') throw invalid('Name: required')
  const id = readString(fields, 'ID', idBytesMax) ?? name
  const outputBytesMax = readCount(fields, 'OutputMaxSize', outputBytesMaxLimit) || outputBytesDefault
  let deregisterCriticalAfterMs: number | undefined
  if (fields.has('DeregisterCriticalServiceAfter')) {
    const field = 'DeregisterCriticalServiceAfter'
    deregisterCriticalAfterMs = readDurationMs(fields.get(field), field) || undefined
    if (deregisterCriticalAfterMs !== undefined && deregisterCriticalAfterMs < deregisterCriticalAfterMsMin) {
      warnings.push(`${field} raised to the minimum, ${deregisterCriticalAfterMsMin / 1000} s`)
      deregisterCriticalAfterMs = deregisterCriticalAfterMsMin
    }
  }
  return {
    id,
    name,
    serviceId: readString(fields, 'ServiceID', idBytesMax) ?? '',
    notes: readString(fields, 'Notes', notesBytesMax) ?? '',
    status: readStatus(fields),
    outputBytesMax,
    deregisterCriticalAfterMs,
  }
}

/** Refuses fields that belong to other kinds than `kind`. */
function refuseForeignFields(fields: Map<string, unknown>, kind: string, allowed: readonly string[]): void {
  for (const name of [...kindFields.http!, ...kindFields.interval!]) {
    if (fields.has(name) && !allowed.includes(name)) throw invalid(`${name}: not used by ${kind} checks`)
  }
}

function readInterval(fields: Map<string, unknown>, options: ParseCheckOptions, warnings: string[]) {
  const intervalMsMin = options.intervalMsMin ?? intervalMsMinDefault
  if (!fields.has('Interval')) throw invalid('Interval: required for HTTP, TCP and script checks')
  let intervalMs = readDurationMs(fields.get('Interval'), 'Interval')
  if (intervalMs > timerMsMax) throw invalid(`Interval: longer than ${timerMsMax} ms`)
  if (intervalMs < intervalMsMin) {
    if (intervalMs > 0) warnings.push(`Interval raised to the minimum, ${intervalMsMin} ms`)
    else throw invalid('Interval: must be greater than 0')
    intervalMs = intervalMsMin
  }
  const timeoutMs = fields.has('Timeout') ? readDurationMs(fields.get('Timeout'), 'Timeout') : 0
  if (timeoutMs > timerMsMax) throw invalid(`Timeout: longer than ${timerMsMax} ms`)
  return {
    intervalMs,
    timeoutMs: timeoutMs || timeoutMsDefault,
    successBeforePassing: readCount(fields, 'SuccessBeforePassing', consecutiveResultsMax),
    failuresBeforeCritical: readCount(fields, 'FailuresBeforeCritical', consecutiveResultsMax),
  }
}

const httpToken = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

function readHeaders(value: unknown): Record<string, string[]> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('Header: expected an object of header name to list of values')
  }
  const entries = Object.entries(value)
  if (entries.length > headersMax) throw invalid(`Header: more than ${headersMax} names`)
  // No prototype: a header named __proto__ is kept as any other name (with {} it set the object's
  // prototype and vanished).
  const headers: Record<string, string[]> = Object.create(null)
  let bytes = 0
  for (const [name, values] of entries) {
    if (!httpToken.test(name)) throw invalid(`Header: ${JSON.stringify(name)} is not a header name`)
    if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) {
      throw invalid(`Header: ${name}: expected a list of strings`)
    }
    for (const v of values) {
      if (/[\r\n\0]/.test(v)) throw invalid(`Header: ${name}: a value contains CR, LF or NUL`)
      bytes += byteLength(name) + byteLength(v)
    }
    headers[name] = [...values]
  }
  if (bytes > headerBytesMax) throw invalid(`Header: more than ${headerBytesMax} bytes`)
  return headers
}

function readHttp(fields: Map<string, unknown>, interval: IntervalCheck): HttpCheckSpec {
  const url = readString(fields, 'HTTP', urlBytesMax)!
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw invalid(`HTTP: not a URL: ${JSON.stringify(url)}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalid(`HTTP: only http and https URLs are checked, got ${parsed.protocol}`)
  }
  const method = readString(fields, 'Method', methodBytesMax) ?? 'GET'
  if (!httpToken.test(method)) throw invalid(`Method: not an HTTP method: ${JSON.stringify(method)}`)
  const disableRedirects = fields.get('DisableRedirects') ?? false
  if (typeof disableRedirects !== 'boolean') throw invalid('DisableRedirects: expected true or false')
  return {
    kind: 'http',
    ...interval,
    url: parsed.href,
    method,
    headers: readHeaders(fields.get('Header')),
    body: readString(fields, 'Body', bodyBytesMax) ?? '',
    disableRedirects,
  }
}

/** Splits "host:port" or "[v6]:port". */
function readTcp(fields: Map<string, unknown>, interval: IntervalCheck): TcpCheckSpec {
  const address = readString(fields, 'TCP', hostBytesMax + 8)!
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(address)
  const host = match?.[1] ?? match?.[2]
  const port = Number(match?.[3])
  if (host === undefined || !(port >= 1 && port <= 65535)) {
    throw invalid(
      `TCP: expected "host:port" or "[ipv6]:port" with a port in 1..65535, got ${JSON.stringify(address)}`,
    )
  }
  if (host.length > hostBytesMax) throw invalid(`TCP: host longer than ${hostBytesMax} characters`)
  return { kind: 'tcp', ...interval, host, port }
}

function readScript(fields: Map<string, unknown>, interval: IntervalCheck, options: ParseCheckOptions) {
  if (options.enableScriptChecks !== true) {
    throw invalid('Args: script checks are disabled on this agent (start it with --enable-script-checks)')
  }
  const args = fields.get('Args')
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw invalid('Args: expected a list of strings')
  }
  if (args.length > argsMax) throw invalid(`Args: more than ${argsMax} arguments`)
  if (args[0] === '') throw invalid('Args: the program (first argument) is empty')
  if (args.some((a) => a.includes('\0'))) throw invalid('Args: an argument contains NUL')
  if (args.reduce((sum, a) => sum + byteLength(a), 0) > argsBytesMax) {
    throw invalid(`Args: more than ${argsBytesMax} bytes`)
  }
  return { kind: 'script', ...interval, args: [...args] } satisfies ScriptCheckSpec
}

function readTtl(fields: Map<string, unknown>): TtlCheckSpec {
  const ttlMs = readDurationMs(fields.get('TTL'), 'TTL')
  if (ttlMs <= 0) throw invalid('TTL: must be greater than 0')
  if (ttlMs > timerMsMax) throw invalid(`TTL: longer than ${timerMsMax} ms`)
  return { kind: 'ttl', ttlMs }
}

/** Parses and validates one check definition; throws CHECK_INVALID naming the field. */
export function parseCheckDefinition(input: unknown, options: ParseCheckOptions = {}): ParsedCheck {
  const fields = normalizeFields(input)
  const warnings: string[] = []
  const common = readCommon(fields, warnings)
  const kinds = (['HTTP', 'TCP', 'Args', 'TTL'] as const).filter((name) => fields.has(name))
  if (kinds.length !== 1) {
    throw invalid(
      kinds.length === 0
        ? 'exactly one of HTTP, TCP, Args (script) or TTL is required'
        : `exactly one of HTTP, TCP, Args (script) or TTL is allowed, got ${kinds.join(' and ')}`,
    )
  }
  const kind = kinds[0]!
  if (kind === 'TTL') {
    if (fields.has('Interval'))
      throw invalid('Interval: a TTL check has no Interval (Interval and TTL exclude each other)')
    refuseForeignFields(fields, 'TTL', [])
    return { definition: { ...common, ...readTtl(fields) }, warnings }
  }
  refuseForeignFields(
    fields,
    kind,
    kind === 'HTTP' ? [...kindFields.http!, ...kindFields.interval!] : kindFields.interval!,
  )
  const interval = readInterval(fields, options, warnings)
  const spec =
    kind === 'HTTP'
      ? readHttp(fields, interval)
      : kind === 'TCP'
        ? readTcp(fields, interval)
        : readScript(fields, interval, options)
  return { definition: { ...common, ...spec }, warnings }
}
