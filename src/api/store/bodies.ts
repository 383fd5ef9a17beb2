/**
 * Checks of untrusted request bodies (parsed JSON) of the store API, turning each into the typed
 * request of mvcc.ts / lease-ops.ts.
 *
 * Only shape and types are checked here: a plain object, no unknown or null fields, strings where
 * strings go, safe integers where numbers go, booleans, arrays of well-formed items. Ranges and
 * limits (key length, value bytes, TTL range, txn size, overlapping writes) are the kv layer's,
 * checked when the command is encoded, so a remote caller gets exactly the KvError a local one
 * would. A failed check throws KV_COMMAND_INVALID (HTTP 400); nothing was changed.
 *
 * Nothing here can crash on hostile input: only own properties of plain objects are read, there is
 * no recursion on input depth, and the result holds only the known fields (never the input object).
 */

import { KvError } from '../../kv/kv-error.ts'
import type { ReadOptions } from '../../kv/kv-store.ts'
import type { LeaseGrantRequest } from '../../kv/lease-ops.ts'
import { isPlainObject } from '../../kv/msgpack.ts'
import type {
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRequest,
  PutRequest,
  RangeRequest,
  TxnOp,
  TxnRequest,
} from '../../kv/mvcc.ts'
import type { WatchRequest } from '../../kv/watch-hub.ts'
import type { WatchSpec } from '../../kv/watch-match.ts'

const rangeFields = ['key', 'rangeEnd', 'limit', 'countOnly', 'keysOnly'] as const
const putFields = ['key', 'value', 'lease', 'prevKv'] as const
const deleteFields = ['key', 'rangeEnd', 'prevKv'] as const
const compareTargets: ReadonlySet<string> = new Set<CompareTarget>([
  'value',
  'version',
  'createRevision',
  'modRevision',
  'lease',
])
const compareResults: ReadonlySet<string> = new Set<CompareResult>(['equal', 'notEqual', 'greater', 'less'])

/** Typed reads of one object's own fields; every failure names the field. */
class Fields {
  readonly #object: Record<string, unknown>
  readonly #where: string

  constructor(value: unknown, where: string, allowed: readonly string[]) {
    if (!isPlainObject(value)) fail(where, 'must be a JSON object')
    for (const name of Object.keys(value)) {
      if (!allowed.includes(name)) fail(where, `unknown field ${JSON.stringify(name.slice(0, 64))}`)
    }
    this.#object = value
    this.#where = where
  }

  has(name: string): boolean {
    return Object.hasOwn(this.#object, name)
  }

  raw(name: string): unknown {
    return this.has(name) ? this.#object[name] : undefined
  }

  fail(detail: string): never {
    return fail(this.#where, detail)
  }

  string(name: string): string {
    const value = this.raw(name)
    if (typeof value !== 'string') this.fail(`${name} must be a string`)
    return value
  }

  integer(name: string): number {
    const value = this.raw(name)
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) this.fail(`${name} must be an integer`)
    return value
  }

  boolean(name: string): boolean {
    const value = this.raw(name)
    if (typeof value !== 'boolean') this.fail(`${name} must be true or false`)
    return value
  }

  array(name: string): unknown[] {
    const value = this.raw(name)
    if (!Array.isArray(value)) this.fail(`${name} must be an array`)
    return value
  }

  optionalString(name: string): string | undefined {
    return this.has(name) ? this.string(name) : undefined
  }

  optionalInteger(name: string): number | undefined {
    return this.has(name) ? this.integer(name) : undefined
  }

  optionalBoolean(name: string): boolean | undefined {
    return this.has(name) ? this.boolean(name) : undefined
  }

  /** A missing list is empty (as the command reader treats it). */
  optionalArray(name: string): unknown[] {
    return this.has(name) ? this.array(name) : []
  }
}

function fail(where: string, detail: string): never {
  throw new KvError('KV_COMMAND_INVALID', `${where}: ${detail}`, 0)
}

/** Sets `out[name]` only when the value is present (results carry no undefined fields). */
function assign<T, K extends keyof T>(out: T, name: K, value: T[K] | undefined): void {
  if (value !== undefined) out[name] = value
}

function rangeOf(f: Fields): RangeRequest {
  const out: RangeRequest = { key: f.string('key') }
  assign(out, 'rangeEnd', f.optionalString('rangeEnd'))
  assign(out, 'limit', f.optionalInteger('limit'))
  assign(out, 'countOnly', f.optionalBoolean('countOnly'))
  assign(out, 'keysOnly', f.optionalBoolean('keysOnly'))
  return out
}

function putOf(f: Fields): PutRequest {
  const out: PutRequest = { key: f.string('key'), value: f.string('value') }
  assign(out, 'lease', f.optionalInteger('lease'))
  assign(out, 'prevKv', f.optionalBoolean('prevKv'))
  return out
}

function deleteOf(f: Fields): DeleteRequest {
  const out: DeleteRequest = { key: f.string('key') }
  assign(out, 'rangeEnd', f.optionalString('rangeEnd'))
  assign(out, 'prevKv', f.optionalBoolean('prevKv'))
  return out
}

function readOptionsOf(f: Fields): ReadOptions {
  const serializable = f.optionalBoolean('serializable')
  return serializable === undefined ? {} : { serializable }
}

/** POST range: a RangeRequest plus `serializable`. */
export function readRangeBody(body: unknown): { req: RangeRequest; options: ReadOptions } {
  const f = new Fields(body, 'range', [...rangeFields, 'serializable'])
  return { req: rangeOf(f), options: readOptionsOf(f) }
}

export function readPutBody(body: unknown): PutRequest {
  return putOf(new Fields(body, 'put', putFields))
}

export function readDeleteBody(body: unknown): DeleteRequest {
  return deleteOf(new Fields(body, 'delete', deleteFields))
}

function compareOf(item: unknown, where: string): Compare {
  const f = new Fields(item, where, ['key', 'target', 'result', 'value'])
  const target = f.string('target')
  const result = f.string('result')
  if (!compareTargets.has(target))
    f.fail('target must be value, version, createRevision, modRevision or lease')
  if (!compareResults.has(result)) f.fail('result must be equal, notEqual, greater or less')
  const value = f.raw('value')
  if (typeof value !== 'string' && (typeof value !== 'number' || !Number.isSafeInteger(value)))
    return f.fail('value must be a string or an integer')
  return { key: f.string('key'), target: target as CompareTarget, result: result as CompareResult, value }
}

function txnOpOf(item: unknown, where: string): TxnOp {
  const type = isPlainObject(item) && Object.hasOwn(item, 'type') ? item.type : undefined
  if (type === 'range') return { type, ...rangeOf(new Fields(item, where, ['type', ...rangeFields])) }
  if (type === 'put') return { type, ...putOf(new Fields(item, where, ['type', ...putFields])) }
  if (type === 'delete') return { type, ...deleteOf(new Fields(item, where, ['type', ...deleteFields])) }
  return fail(where, 'type must be range, put or delete')
}

/** POST txn: compare, success and failure (a missing list is empty). */
export function readTxnBody(body: unknown): TxnRequest {
  const f = new Fields(body, 'txn', ['compare', 'success', 'failure'])
  return {
    compare: f.optionalArray('compare').map((item, i) => compareOf(item, `txn.compare[${i}]`)),
    success: f.optionalArray('success').map((item, i) => txnOpOf(item, `txn.success[${i}]`)),
    failure: f.optionalArray('failure').map((item, i) => txnOpOf(item, `txn.failure[${i}]`)),
  }
}

export function readLeaseGrantBody(body: unknown): LeaseGrantRequest {
  const f = new Fields(body, 'lease/grant', ['lease', 'ttlMs'])
  const out: LeaseGrantRequest = { ttlMs: f.integer('ttlMs') }
  assign(out, 'lease', f.optionalInteger('lease'))
  return out
}

/** POST lease/keepalive and lease/revoke: `{id}`. */
export function readLeaseIdBody(body: unknown, where: string): number {
  return new Fields(body, where, ['id']).integer('id')
}

/** POST lease/ttl: `{id, serializable?}`. */
export function readLeaseTtlBody(body: unknown): { id: number; options: ReadOptions } {
  const f = new Fields(body, 'lease/ttl', ['id', 'serializable'])
  return { id: f.integer('id'), options: readOptionsOf(f) }
}

/** POST changes: the watch's key, recursive, includeHidden, and sinceRevision (KvStore.lastChange). */
export function readChangesBody(body: unknown): {
  spec: WatchSpec
  sinceRevision: number
  options: ReadOptions
} {
  const f = new Fields(body, 'changes', [
    'key',
    'recursive',
    'includeHidden',
    'sinceRevision',
    'serializable',
  ])
  const spec: WatchSpec = {
    key: f.string('key'),
    recursive: f.optionalBoolean('recursive') ?? false,
    includeHidden: f.optionalBoolean('includeHidden') ?? false,
  }
  return { spec, sinceRevision: f.integer('sinceRevision'), options: readOptionsOf(f) }
}

/** Digits of a revision in a query (Number.MAX_SAFE_INTEGER has 16). */
const revisionDigitsMax = 16

/**
 * GET watch: `key` (required), `recursive`, `includeHidden`, `stream` (true|false; stream defaults
 * to true on this endpoint) and `sinceRevision` (decimal). Each at most once; nothing else.
 */
export function readWatchQuery(query: unknown): WatchRequest {
  // fastify's query object has a prototype of its own (without Object's): copy its own fields.
  const own = typeof query === 'object' && query !== null ? Object.fromEntries(Object.entries(query)) : query
  const f = new Fields(own, 'watch', ['key', 'recursive', 'includeHidden', 'stream', 'sinceRevision'])
  const flag = (name: string): boolean | undefined => {
    const value = f.optionalString(name)
    if (value === undefined) return undefined
    if (value !== 'true' && value !== 'false') f.fail(`${name} must be true or false`)
    return value === 'true'
  }
  const out: WatchRequest = { key: f.string('key'), stream: flag('stream') ?? true }
  assign(out, 'recursive', flag('recursive'))
  assign(out, 'includeHidden', flag('includeHidden'))
  const since = f.optionalString('sinceRevision')
  if (since !== undefined) {
    if (!/^[0-9]+$/.test(since) || since.length > revisionDigitsMax || !Number.isSafeInteger(Number(since)))
      f.fail('sinceRevision must be a non-negative integer')
    out.sinceRevision = Number(since)
  }
  return out
}
