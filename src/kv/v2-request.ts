/**
 * etcd 2.3's request semantics for /v2/keys, so the HTTP layer stays a thin mapping:
 * parseV2KeyRequest checks the parameters exactly as etcd's parseKeyRequest (v2http/client.go) does,
 * with the same error codes, and planV2Write picks the store operation as etcd's applyRequest
 * (etcdserver/server.go) does, returning the command to propose.
 *
 * Parameters arrive as the HTTP layer parsed them: name → string or list of strings (query string
 * and form body merged; the first value counts, as Go's FormValue). Booleans accept Go's ParseBool
 * spellings (1 t T TRUE true True 0 f F FALSE false False); numbers are unsigned decimal.
 * One departure: numbers above 2^53 - 1 are rejected as not-a-number (Go accepted up to 2^64 - 1).
 */
import type { Command } from './commands.ts'
import { KvError, type KvErrorCode } from './kv-error.ts'
import { kvLimits } from './limits.ts'

export type V2Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE'

export type V2Form = Readonly<Record<string, string | readonly string[] | undefined>>

export interface V2KeyRequest {
  method: V2Method
  /** As given after /v2/keys (the store cleans it). */
  key: string
  value: string
  dir: boolean
  /** Seconds; undefined when absent or empty (no TTL: the key becomes permanent). */
  ttlSec: number | undefined
  /** undefined when absent (etcd's nullable prevExist). */
  prevExist: boolean | undefined
  /** '' when absent. */
  prevValue: string
  /** 0 when absent (and 0 always passes). */
  prevIndex: number
  recursive: boolean
  sorted: boolean
  wait: boolean
  /** 0 when absent: watch from the next revision. */
  waitIndex: number
  stream: boolean
  quorum: boolean
  refresh: boolean
}

const trueSpellings = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const falseSpellings = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

/** Throws KvError (201, 202, 203, 209, 211, 212) as etcd's parseKeyRequest; `index` is for the body. */
export function parseV2KeyRequest(method: V2Method, key: string, form: V2Form, index: number): V2KeyRequest {
  const fail = (code: KvErrorCode, cause: string): never => {
    throw new KvError(code, cause, index)
  }
  const first = (name: string): string | undefined => {
    const raw = form[name]
    return typeof raw === 'string' ? raw : raw?.[0]
  }
  const uint = (name: string, code: KvErrorCode): number => {
    const raw = first(name)
    if (raw === undefined) return 0
    const parsed = /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN
    return Number.isSafeInteger(parsed) ? parsed : fail(code, `invalid value for "${name}"`)
  }
  const bool = (name: string, cause = `invalid value for "${name}"`): boolean | undefined => {
    const raw = first(name)
    if (raw === undefined) return undefined
    if (trueSpellings.has(raw)) return true
    if (falseSpellings.has(raw)) return false
    return fail('KV_INVALID_FIELD', cause)
  }
  const prevIndex = uint('prevIndex', 'KV_INDEX_NAN')
  const waitIndex = uint('waitIndex', 'KV_INDEX_NAN')
  const recursive = bool('recursive') === true
  const sorted = bool('sorted') === true
  const wait = bool('wait') === true
  const dir = bool('dir') === true
  const quorum = bool('quorum') === true
  const stream = bool('stream') === true
  if (wait && method !== 'GET') fail('KV_INVALID_FIELD', '"wait" can only be used with GET requests')
  const prevValue = first('prevValue')
  if (prevValue === '') fail('KV_PREV_VALUE_REQUIRED', '"prevValue" cannot be empty')
  const ttlRaw = first('ttl')
  const ttlSec = ttlRaw === undefined || ttlRaw === '' ? undefined : uint('ttl', 'KV_TTL_NAN')
  if (ttlSec !== undefined && ttlSec * 1000 > kvLimits.ttlMsMax) fail('KV_TTL_INVALID', 'ttl too large')
  const prevExist = bool('prevExist', 'invalid value for prevExist')
  const refresh = bool('refresh', 'invalid value for refresh') === true
  const value = first('value') ?? ''
  if (refresh) {
    if (value !== '') fail('KV_REFRESH_VALUE', 'A value was provided on a refresh')
    if (ttlSec === undefined) fail('KV_REFRESH_TTL_REQUIRED', 'No TTL value set')
  }
  return {
    method,
    key,
    value,
    dir,
    ttlSec,
    prevExist,
    prevValue: prevValue ?? '',
    prevIndex,
    recursive,
    sorted,
    wait,
    waitIndex,
    stream,
    quorum,
    refresh,
  }
}

/** The command for a PUT, POST or DELETE (etcd's applyRequest), stamped with the proposer's id and clock. */
export function planV2Write(req: V2KeyRequest, stamp: { id: string; now: number }): Command {
  const { key, value, dir, prevValue, prevIndex } = req
  const ttl = req.ttlSec === undefined ? {} : { ttlMs: req.ttlSec * 1000 }
  const refresh = req.refresh ? { refresh: true } : {}
  const compares = prevIndex > 0 || prevValue !== ''
  switch (req.method) {
    case 'POST':
      return { op: 'v2.create', ...stamp, key, value, dir, unique: true, ...ttl }
    case 'PUT':
      if (req.prevExist === true) {
        if (!compares) return { op: 'v2.update', ...stamp, key, value, ...ttl, ...refresh }
        return { op: 'v2.cas', ...stamp, key, value, prevValue, prevIndex, ...ttl, ...refresh }
      }
      if (req.prevExist === false) return { op: 'v2.create', ...stamp, key, value, dir, ...ttl }
      if (compares) return { op: 'v2.cas', ...stamp, key, value, prevValue, prevIndex, ...ttl, ...refresh }
      return { op: 'v2.set', ...stamp, key, value, dir, ...ttl, ...refresh }
    case 'DELETE':
      if (compares) return { op: 'v2.cad', ...stamp, key, prevValue, prevIndex }
      return { op: 'v2.delete', ...stamp, key, dir, recursive: req.recursive }
    default:
      throw new Error(`planV2Write: ${req.method} is a read`)
  }
}
