/**
 * Every failure of the store API as `{code, message, cause?, index?, oldestIndex?}` (store-wire.ts)
 * with an HTTP status. Clients rebuild the typed error from the body alone; the status is for
 * people, proxies and logs, and tells a client which failures another server may not have:
 *
 *   400 bad input (KV_COMMAND_INVALID and the kv layer's own checks)   404 not found
 *   409 the state forbids it (exists, not a file, ...)                 412 KV_COMPARE_FAILED
 *   410 KV_EVENT_INDEX_CLEARED (history compacted past the revision)   413 body over bodyBytesMax
 *   503 this member cannot serve it now (Raft errors, closing, watch limits)
 *   504 RAFT_REQUEST_TIMEOUT (a write may still be applied)            507 keyspace or lease table full
 *   500 anything else: a bug, answered with code INTERNAL and logged by the caller.
 */
import type { FastifyError } from 'fastify'
import { type ErrorCode, isCairnError } from '../../errors.ts'
import { KvError } from '../../kv/kv-error.ts'
import { type ErrorBody, errorBodyOf } from '../../kv/store-wire.ts'

export interface StoreErrorReply {
  status: number
  body: ErrorBody
  /** A server fault worth logging (not the client's mistake, not a known state). */
  unexpected: boolean
}

const statusByCode: Partial<Record<ErrorCode, number>> = {
  KV_KEY_NOT_FOUND: 404,
  KV_LEASE_NOT_FOUND: 404,
  KV_MEMBER_NOT_FOUND: 404,
  KV_NODE_EXISTS: 409,
  KV_LEASE_EXISTS: 409,
  KV_NOT_FILE: 409,
  KV_NOT_DIR: 409,
  KV_DIR_NOT_EMPTY: 409,
  KV_ROOT_READ_ONLY: 409,
  KV_COMPARE_FAILED: 412,
  KV_EVENT_INDEX_CLEARED: 410,
  KV_WATCHER_CLEARED: 503,
  KV_WATCHER_SLOW: 503,
  KV_WATCHERS_MAX: 503,
  KV_SPACE_EXCEEDED: 507,
  KV_LEASES_MAX: 507,
  KV_SNAPSHOT_INVALID: 500,
  RAFT_REQUEST_TIMEOUT: 504,
}

export function storeHttpStatus(code: ErrorCode): number {
  const status = statusByCode[code]
  if (status !== undefined) return status
  return code.startsWith('KV_') ? 400 : 503
}

export function storeErrorReply(error: unknown, bodyBytesMax: number): StoreErrorReply {
  if (isCairnError(error)) {
    return { status: storeHttpStatus(error.code), body: errorBodyOf(error), unexpected: false }
  }
  const status = httpStatusOf(error)
  if (status === 413) {
    const tooLarge = new KvError('KV_VALUE_TOO_LARGE', `request body larger than ${bodyBytesMax} bytes`, 0)
    return { status, body: errorBodyOf(tooLarge), unexpected: false }
  }
  if (status !== undefined && status >= 400 && status < 500) {
    // fastify's own refusals: malformed JSON, an empty body, an unsupported content type.
    const invalid = new KvError('KV_COMMAND_INVALID', (error as FastifyError).message, 0)
    return { status, body: errorBodyOf(invalid), unexpected: false }
  }
  return { status: 500, body: errorBodyOf(error), unexpected: true }
}

function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const status = (error as { statusCode?: unknown }).statusCode
  return typeof status === 'number' ? status : undefined
}
