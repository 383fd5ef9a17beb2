/**
 * The etcd v3-style operations over the same keyspace, for internal users (catalog, scheduler):
 * range, put, delete (single key or range) and txn (compare, then one branch of ops).
 *
 * The v3 view sees files only: directories (which puts create on the way, as v2 sets do) are
 * invisible to ranges, compares and deletes. Keys must be clean (key-path.ts); range bounds are any
 * strings, '\0' as rangeEnd meaning "no upper bound" (etcd's convention).
 *
 * Revision rules (etcd v3's): a put, a delete that removed at least one key, or a txn whose branch
 * changed at least one key uses exactly one new revision, shared by all its changes; reads, deletes
 * of nothing and failed operations use none. Every change records a v2-shaped event (`set` for a
 * put, `delete` for a deletion) so v2 watchers and v3 users see one stream.
 *
 * A txn is atomic: its branch is chosen by the compares, every put of the branch is checked before
 * the first change, and writes in one branch never touch the same or nested keys (checked when the
 * command is validated), so the checks made up front still hold when each op runs.
 */
import type { ApplyContext } from './apply-context.ts'
import { KvEvent } from './events.ts'
import { isCleanKey, rootKey } from './key-path.ts'
import type { Keyspace, KvNode } from './keyspace.ts'
import { KvError } from './kv-error.ts'
import { removalViewOf, viewOf } from './v2-node.ts'

export interface KeyValue {
  key: string
  value: string
  createRevision: number
  modRevision: number
  /** 1 when created, +1 per modification. */
  version: number
  /** 0 for none. */
  lease: number
}

export interface RangeRequest {
  key: string
  /** Absent: the single key. '\0': every key >= key. Otherwise [key, rangeEnd). */
  rangeEnd?: string | undefined
  /** 0 or absent: no limit. */
  limit?: number | undefined
  countOnly?: boolean | undefined
  keysOnly?: boolean | undefined
}

export interface RangeResult {
  revision: number
  kvs: KeyValue[]
  /** Keys in the range, before the limit. */
  count: number
  more: boolean
}

export interface PutRequest {
  key: string
  value: string
  /** Attach to this lease (0 or absent: none; an existing attachment is dropped). */
  lease?: number | undefined
  prevKv?: boolean | undefined
}

export interface PutResult {
  revision: number
  prevKv?: KeyValue
}

export interface DeleteRequest {
  key: string
  rangeEnd?: string | undefined
  prevKv?: boolean | undefined
}

export interface DeleteResult {
  revision: number
  deleted: number
  prevKvs?: KeyValue[]
}

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease'
export type CompareResult = 'equal' | 'notEqual' | 'greater' | 'less'

/** `value` is a string for the value target and a number for the others. */
export interface Compare {
  key: string
  target: CompareTarget
  result: CompareResult
  value: string | number
}

export type TxnOp =
  | ({ type: 'range' } & RangeRequest)
  | ({ type: 'put' } & PutRequest)
  | ({ type: 'delete' } & DeleteRequest)

export type TxnResponse =
  | ({ type: 'range' } & RangeResult)
  | ({ type: 'put' } & PutResult)
  | ({ type: 'delete' } & DeleteResult)

export interface TxnRequest {
  compare: Compare[]
  success: TxnOp[]
  failure: TxnOp[]
}

export interface TxnResult {
  revision: number
  succeeded: boolean
  responses: TxnResponse[]
}

export function kvOf(node: KvNode): KeyValue {
  return {
    key: node.key,
    value: node.value,
    createRevision: node.createRevision,
    modRevision: node.modRevision,
    version: node.version,
    lease: node.lease,
  }
}

export function range(ks: Keyspace, req: RangeRequest): RangeResult {
  const keys = rangeKeys(ks, req.key, req.rangeEnd)
  const limit = req.limit !== undefined && req.limit > 0 ? req.limit : keys.length
  const kvs: KeyValue[] = []
  if (req.countOnly !== true) {
    for (const key of keys.slice(0, limit)) {
      const kv = kvOf(ks.get(key) as KvNode)
      if (req.keysOnly === true) kv.value = ''
      kvs.push(kv)
    }
  }
  return { revision: ks.revision, kvs, count: keys.length, more: keys.length > limit }
}

export function put(ctx: ApplyContext, req: PutRequest): PutResult {
  ctx.keyspace.checkSpace(checkPut(ctx.keyspace, req))
  return applyPut(ctx, req, ctx.nextRevision())
}

export function deleteRange(ctx: ApplyContext, req: DeleteRequest): DeleteResult {
  return applyDelete(ctx, req, () => ctx.nextRevision())
}

export function txn(ctx: ApplyContext, req: TxnRequest): TxnResult {
  const ks = ctx.keyspace
  const succeeded = req.compare.every((c) => compareHolds(ks, c))
  const ops = succeeded ? req.success : req.failure
  let growth = 0
  for (const op of ops) {
    if (op.type === 'put') growth += checkPut(ks, op)
    if (op.type === 'delete' && (op.rangeEnd === undefined || op.rangeEnd === '')) checkV3Key(ks, op.key)
  }
  ks.checkSpace(growth)
  let revision = 0
  const takeRevision = () => {
    if (revision === 0) revision = ctx.nextRevision()
    return revision
  }
  const responses = ops.map((op): TxnResponse => {
    if (op.type === 'range') return { type: 'range', ...range(ks, op) }
    if (op.type === 'put') return { type: 'put', ...applyPut(ctx, op, takeRevision()) }
    return { type: 'delete', ...applyDelete(ctx, op, takeRevision) }
  })
  for (const response of responses) response.revision = ks.revision
  return { revision: ks.revision, succeeded, responses }
}

export function compareHolds(ks: Keyspace, c: Compare): boolean {
  const node = ks.get(c.key)
  const file = node !== undefined && !node.dir ? node : undefined
  if (c.target === 'value') {
    if (file === undefined) return false
    return holds(file.value, c.value as string, c.result)
  }
  return holds(file === undefined ? 0 : numericTarget(file, c.target), c.value as number, c.result)
}

/** Checks one put against the current state; returns the bytes it may add. */
function checkPut(ks: Keyspace, req: PutRequest): number {
  checkV3Key(ks, req.key)
  const node = ks.get(req.key)
  if (node?.dir === true) throw new KvError('KV_NOT_FILE', req.key, ks.revision)
  if (node === undefined) ks.checkAncestors(req.key)
  const lease = req.lease ?? 0
  if (lease !== 0 && ks.leases.get(lease) === undefined)
    throw new KvError('KV_LEASE_NOT_FOUND', String(lease), ks.revision)
  return ks.growthOf(req.key, req.value) - (node?.sizeBytes ?? 0)
}

function applyPut(ctx: ApplyContext, req: PutRequest, revision: number): PutResult {
  const ks = ctx.keyspace
  const lease = req.lease ?? 0
  let node = ks.get(req.key)
  const prevKv = node === undefined ? undefined : kvOf(node)
  const prevNode = node === undefined ? undefined : viewOf(node)
  if (node === undefined) {
    node = ks.insert(req.key, { dir: false, value: req.value, revision, deadlineMs: undefined, lease })
  } else {
    ks.write(node, req.value, revision)
    ks.setDeadline(node, undefined)
    ks.setLease(node, lease)
  }
  ctx.record(new KvEvent('set', revision, viewOf(node), prevNode, ctx.nowMs))
  const result: PutResult = { revision }
  if (req.prevKv === true && prevKv !== undefined) result.prevKv = prevKv
  return result
}

function applyDelete(ctx: ApplyContext, req: DeleteRequest, takeRevision: () => number): DeleteResult {
  const ks = ctx.keyspace
  if (req.rangeEnd === undefined || req.rangeEnd === '') checkV3Key(ks, req.key)
  const keys = rangeKeys(ks, req.key, req.rangeEnd)
  if (keys.length === 0) {
    const empty: DeleteResult = { revision: ks.revision, deleted: 0 }
    if (req.prevKv === true) empty.prevKvs = []
    return empty
  }
  const revision = takeRevision()
  const prevKvs: KeyValue[] = []
  for (const key of keys) {
    const node = ks.get(key) as KvNode
    prevKvs.push(kvOf(node))
    ctx.record(new KvEvent('delete', revision, removalViewOf(node, revision), viewOf(node), ctx.nowMs))
    ks.removeSubtree(node)
  }
  const result: DeleteResult = { revision, deleted: keys.length }
  if (req.prevKv === true) result.prevKvs = prevKvs
  return result
}

/** File keys in the range, in key order. */
function rangeKeys(ks: Keyspace, key: string, rangeEnd: string | undefined): string[] {
  if (rangeEnd === undefined || rangeEnd === '') {
    const node = ks.get(key)
    return node !== undefined && !node.dir ? [key] : []
  }
  return [...ks.fileKeys(key, rangeEnd)]
}

/** A single key of the v3 view: clean and not the root. */
function checkV3Key(ks: Keyspace, key: string): void {
  if (key === rootKey || !isCleanKey(key)) throw new KvError('KV_KEY_INVALID', key, ks.revision)
}

function numericTarget(node: KvNode, target: Exclude<CompareTarget, 'value'>): number {
  switch (target) {
    case 'version':
      return node.version
    case 'createRevision':
      return node.createRevision
    case 'modRevision':
      return node.modRevision
    case 'lease':
      return node.lease
  }
}

function holds<T extends string | number>(actual: T, expected: T, result: CompareResult): boolean {
  switch (result) {
    case 'equal':
      return actual === expected
    case 'notEqual':
      return actual !== expected
    case 'greater':
      return actual > expected
    case 'less':
      return actual < expected
  }
}
