/**
 * Plumbing shared by the fleet v1 routes: errors in fleet's shape `{"error":{"code","message"}}`
 * (code is the HTTP status, as fleet sends it) with Cairn's stable code in `X-Cairn-Error-Code`,
 * query parameters, and the JSON body decoder.
 *
 * Invariants: a route never throws past fleetErrorReply; a bad parameter or body is a 400 naming
 * it, found before anything is read or written; anything not a known error is a 500 with a generic
 * message (and logged by the caller), never a stack trace.
 */
import type { FastifyReply } from 'fastify'
import { CairnError, type ErrorCode, isCairnError } from '../../errors.ts'
import { fleetLimits } from './limits.ts'

const statusByCode: Partial<Record<ErrorCode, number>> = {
  FLEET_REQUEST_INVALID: 400,
  UNIT_INVALID: 400,
  UNIT_NAME_INVALID: 400,
  FLEET_UNIT_NOT_FOUND: 404,
  FLEET_FIELDS_MISSING: 409,
  FLEET_UNIT_IMMUTABLE: 409,
  FLEET_TEMPLATE_MISSING: 409,
  FLEET_TEMPLATE_IN_USE: 409,
  FLEET_WRITE_CONTENDED: 503,
  FLEET_MACHINE_UNREACHABLE: 502,
  KV_VALUE_TOO_LARGE: 400,
  KV_SPACE_EXCEEDED: 507,
  KV_WATCHERS_MAX: 429,
  RAFT_NO_LEADER: 503,
  RAFT_REQUEST_TIMEOUT: 504,
  RAFT_UNCOMMITTED_BYTES_MAX: 429,
  RAFT_READS_PENDING_MAX: 429,
  RAFT_PROPOSALS_WAITING_MAX: 429,
  RAFT_PROPOSALS_PENDING_MAX: 429,
  RAFT_LEADER_TRANSFER_IN_PROGRESS: 503,
  RAFT_STOPPED: 503,
}

export function invalid(detail: string): CairnError {
  return new CairnError('FLEET_REQUEST_INVALID', detail)
}

/** The HTTP status of an error: its code's, a framework error's own 4xx, else 500. */
export function fleetStatusOf(error: unknown): number {
  if (isCairnError(error)) return statusByCode[error.code] ?? 500
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode
  if (status === 404 || status === 405) return status
  // Framework refusals (body too large, bad content) are the client's fault: 400, as every bad input.
  return typeof status === 'number' && status >= 400 && status < 500 ? 400 : 500
}

/** The message fleet clients show: a unit file error reads `file:line: key: reason`. */
function messageOf(error: unknown, status: number): string {
  if (isCairnError(error, 'UNIT_INVALID')) {
    const e = error as CairnError & { file?: string; line?: number; key?: string; reason?: string }
    if (e.file !== undefined && e.reason !== undefined)
      return `${e.file}:${e.line}: ${e.key === '' || e.key === undefined ? '' : `${e.key}: `}${e.reason}`
  }
  if (isCairnError(error)) return error.message
  const code = (error as { code?: unknown } | undefined)?.code
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return `request body larger than bodyBytesMax (${fleetLimits.bodyBytesMax} bytes)`
  if (status < 500 && error instanceof Error) return error.message
  return 'internal error'
}

/** Answers an error as fleet does, plus the stable code in a header. */
export function fleetErrorReply(reply: FastifyReply, error: unknown): FastifyReply {
  const status = fleetStatusOf(error)
  if (isCairnError(error)) reply.header('X-Cairn-Error-Code', error.code)
  else if (status === 400) reply.header('X-Cairn-Error-Code', 'FLEET_REQUEST_INVALID')
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ error: { code: status, message: messageOf(error, status) } })
}

type Query = Record<string, string | string[] | undefined>

/** A single-valued parameter; repeating it is an error (which one would be meant?). */
export function queryValue(query: Query, name: string): string | undefined {
  const value = query[name]
  if (Array.isArray(value)) throw invalid(`parameter ${name} given more than once`)
  return value
}

/** A boolean parameter: absent is false; `true`/`1`/empty is true, `false`/`0` false. */
export function queryBool(query: Query, name: string): boolean {
  const value = queryValue(query, name)
  if (value === undefined || value === 'false' || value === '0') return false
  if (value === '' || value === 'true' || value === '1') return true
  throw invalid(`parameter ${name}: want true or false, got ${JSON.stringify(value.slice(0, 64))}`)
}

/** Parses a JSON body given as a Buffer; empty is undefined; bad JSON is FLEET_REQUEST_INVALID. */
export function jsonBody(body: unknown): unknown {
  if (body === undefined || body === null) return undefined
  if (!Buffer.isBuffer(body)) return body
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body)
  } catch {
    throw invalid('unable to decode body: not valid UTF-8')
  }
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw invalid(`unable to decode body: ${(error as Error).message}`)
  }
}
