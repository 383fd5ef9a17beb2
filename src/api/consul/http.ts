/**
 * Plumbing shared by every Consul v1 route: error replies in Consul's shape (a plain-text body
 * with an HTTP status), the X-Consul-* headers, and the common query parameters.
 *
 * Invariants: a route never throws past consulErrorReply; every reply with a body other than an
 * error is JSON (`application/json`), except the raw KV read; a malformed parameter is a 400
 * naming it, before anything is read or changed.
 */
import type { FastifyReply } from 'fastify'
import { readDurationMs } from '../../catalog/durations.ts'
import { CairnError, type ErrorCode, isCairnError } from '../../errors.ts'
import type { ConsulApiDeps } from './deps.ts'

/** Consul's blocking wait when `?wait` is absent: 5 minutes. */
export const blockingWaitMsDefault = 5 * 60_000
/** Consul's cap on `?wait`: 10 minutes. */
export const blockingWaitMsMax = 10 * 60_000

export type Consistency = 'default' | 'consistent' | 'stale'

export interface ReadParams {
  /** The `?index` a blocking query waits past; undefined for a plain read. */
  index: number | undefined
  waitMs: number
  consistency: Consistency
  /** `?filter`, unparsed ('' when absent). */
  filter: string
}

type Query = Record<string, string | string[] | undefined>

/** The first value of a repeated parameter, as Go's url.Values.Get returns it. */
export function queryValue(query: Query, name: string): string | undefined {
  const value = query[name]
  return Array.isArray(value) ? value[0] : value
}

export function queryValues(query: Query, name: string): string[] {
  const value = query[name]
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/** A flag parameter (`?recurse`, `?passing`): present (with any value but "false") means true. */
export function queryFlag(query: Query, name: string): boolean {
  const value = queryValue(query, name)
  return value !== undefined && value !== 'false' && value !== '0'
}

export function invalid(detail: string): CairnError {
  return new CairnError('CONSUL_REQUEST_INVALID', detail)
}

/** An unsigned integer parameter (`index`, `cas`, `flags` below 2^53). */
export function queryUint(query: Query, name: string): number | undefined {
  const text = queryValue(query, name)
  if (text === undefined) return undefined
  if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw invalid(`invalid ${name} parameter: ${JSON.stringify(text.slice(0, 64))}`)
  }
  return Number(text)
}

export function readParams(query: Query): ReadParams {
  const index = queryUint(query, 'index')
  const waitText = queryValue(query, 'wait')
  let waitMs = blockingWaitMsDefault
  if (waitText !== undefined) {
    // A bare number is read as seconds; otherwise a Go duration ("10s", "1m").
    waitMs = /^[0-9]+$/.test(waitText)
      ? Number(waitText) * 1000
      : readDurationMs(waitText, 'wait', 'CONSUL_REQUEST_INVALID')
    waitMs = Math.min(waitMs, blockingWaitMsMax)
  }
  const stale = query.stale !== undefined
  const consistent = query.consistent !== undefined
  if (stale && consistent) throw invalid('cannot specify both ?stale and ?consistent')
  return {
    index,
    waitMs,
    consistency: stale ? 'stale' : consistent ? 'consistent' : 'default',
    filter: queryValue(query, 'filter') ?? '',
  }
}

/** X-Consul-Index and the leader headers on a read. */
export function setReadHeaders(
  reply: FastifyReply,
  deps: ConsulApiDeps,
  index: number,
  consistency: Consistency,
): void {
  const leader = deps.leader()
  reply.header('X-Consul-Index', String(Math.max(1, index)))
  reply.header('X-Consul-KnownLeader', leader.known ? 'true' : 'false')
  reply.header('X-Consul-LastContact', String(Math.max(0, Math.round(leader.lastContactMs))))
  reply.header('X-Consul-Effective-Consistency', consistency === 'default' ? 'leader' : consistency)
}

/** Waits for the read barrier unless the read is stale. */
export async function settle(deps: ConsulApiDeps, consistency: Consistency): Promise<void> {
  if (consistency !== 'stale') await deps.readBarrier()
}

const statusOfCode: Partial<Record<ErrorCode, number>> = {
  CATALOG_INVALID: 400,
  CATALOG_NODE_NOT_FOUND: 400,
  CATALOG_SERVICE_NOT_FOUND: 404,
  CATALOG_CHECK_NOT_FOUND: 404,
  CONSUL_REQUEST_INVALID: 400,
  CONSUL_FILTER_INVALID: 400,
  SESSION_NOT_FOUND: 400,
  SESSION_INVALID: 400,
  CHECK_INVALID: 400,
  CHECK_NOT_TTL: 400,
  KV_KEY_INVALID: 400,
  KV_VALUE_TOO_LARGE: 413,
  KV_TXN_TOO_MANY_OPS: 413,
  KV_SPACE_EXCEEDED: 507,
  KV_WATCHERS_MAX: 429,
  RAFT_NO_LEADER: 500,
  RAFT_UNCOMMITTED_BYTES_MAX: 429,
  RAFT_READS_PENDING_MAX: 429,
  RAFT_LEADER_TRANSFER_IN_PROGRESS: 503,
}

/** The HTTP status for an error (500 for anything not a known CairnError). */
export function consulStatusOf(error: unknown): number {
  if (isCairnError(error)) return statusOfCode[error.code] ?? 500
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500
}

/** Answers an error as Consul does: plain text, the status of its code. */
export function consulErrorReply(reply: FastifyReply, error: unknown): FastifyReply {
  const status = consulStatusOf(error)
  let text: string
  if (isCairnError(error, 'RAFT_NO_LEADER')) text = 'No cluster leader'
  else if (error instanceof Error) text = error.message
  else text = String(error)
  if (status === 500 && !isCairnError(error)) text = `internal error: ${text}`
  return reply.code(status).type('text/plain; charset=utf-8').send(text)
}

/** Parses a JSON request body given as a string or Buffer; a bad body is CONSUL_REQUEST_INVALID. */
export function jsonBody(body: unknown): unknown {
  if (body === undefined || body === null) return undefined
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined
  if (text === undefined) return body
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw invalid(`request decode failed: ${(error as Error).message}`)
  }
}
