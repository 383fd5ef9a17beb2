/**
 * The etcd v2 store operations over the keyspace, with etcd 2.3's exact semantics and errors
 * (store/store.go): get, set, create (including in-order POST keys), update, compareAndSwap,
 * delete, compareAndDelete, and expiry of one key.
 *
 * Index rules (etcd's): each successful write uses exactly one new revision, which becomes the
 * node's modifiedIndex (and createdIndex for new nodes, including directories created on the way);
 * a failed write uses none. Refresh writes (TTL reset, value kept) use a revision too, but their
 * event is kept in the history only, never delivered to watchers.
 *
 * Writes throw KvError (caught by the state machine and returned as the command's result); every
 * check that can fail runs before the first mutation, so a failed write changes nothing.
 */
import type { ApplyContext } from './apply-context.ts'
import { KvEvent } from './events.ts'
import { checkKeyLimits, cleanKey, isHiddenName, normalizeKey, rootKey } from './key-path.ts'
import type { Keyspace, KvNode } from './keyspace.ts'
import { nodeSizeBytes } from './keyspace.ts'
import { KvError } from './kv-error.ts'
import { removalViewOf, type V2Node, type V2Result, type V2WriteAction, viewOf } from './v2-node.ts'

export interface V2GetOptions {
  recursive?: boolean
  /** Accepted for compatibility: listings are always sorted by key (deterministic). */
  sorted?: boolean
}

export interface V2SetArgs {
  key: string
  value: string
  dir: boolean
  /** TTL in ms; absent means permanent (etcd: no `ttl`, or `ttl=`, clears the TTL). */
  ttlMs?: number | undefined
  refresh?: boolean | undefined
}

export interface V2CreateArgs {
  key: string
  value: string
  dir: boolean
  ttlMs?: number | undefined
  /** POST: create `<key>/<%020d of the new index>`. */
  unique?: boolean | undefined
}

export interface V2UpdateArgs {
  key: string
  value: string
  ttlMs?: number | undefined
  refresh?: boolean | undefined
}

export interface V2CompareArgs {
  /** '' or absent: not compared. */
  prevValue?: string | undefined
  /** 0 or absent: not compared (etcd: prevIndex=0 always passes). */
  prevIndex?: number | undefined
}

export interface V2CasArgs extends V2UpdateArgs, V2CompareArgs {}

export interface V2DeleteArgs {
  key: string
  dir?: boolean | undefined
  recursive?: boolean | undefined
}

export interface V2CadArgs extends V2CompareArgs {
  key: string
}

export function v2Get(keyspace: Keyspace, rawKey: string, options: V2GetOptions = {}): V2Result {
  const node = keyspace.resolve(normalizeKey(rawKey, keyspace.revision))
  const view = node.dir ? listingOf(node, options.recursive === true) : viewOf(node)
  return { action: 'get', node: view, index: keyspace.revision }
}

export function v2Set(ctx: ApplyContext, args: V2SetArgs): V2Result {
  const ks = ctx.keyspace
  const key = normalizeKey(args.key, ks.revision)
  // Only a refresh needs the key to exist (KV_KEY_NOT_FOUND otherwise) and keeps its value. A plain
  // set resolves nothing first: internalCreate's ancestor check throws the KV_NOT_DIR that resolve
  // would, before anything changes, and a missing key is what a set creates. (Resolving it cost an
  // Error with its stack, built and caught, on every set of a new key.)
  const value = args.refresh === true ? ks.resolve(key).value : args.value
  return internalCreate(ctx, key, args.dir, value, args.ttlMs, {
    replace: true,
    action: 'set',
    refresh: args.refresh,
  })
}

export function v2Create(ctx: ApplyContext, args: V2CreateArgs): V2Result {
  const ks = ctx.keyspace
  let key = normalizeKey(args.key, ks.revision)
  if (args.unique === true) {
    key = cleanKey(`${key}/${String(ks.revision + 1).padStart(20, '0')}`)
    checkKeyLimits(key, ks.revision)
  }
  return internalCreate(ctx, key, args.dir, args.value, args.ttlMs, { replace: false, action: 'create' })
}

export function v2Update(ctx: ApplyContext, args: V2UpdateArgs): V2Result {
  const ks = ctx.keyspace
  const key = writableKey(ks, args.key)
  const node = ks.resolve(key)
  if (node.dir && args.value !== '') throw new KvError('KV_NOT_FILE', key, ks.revision)
  const value = args.refresh === true ? node.value : args.value
  return rewrite(ctx, node, value, args.ttlMs, 'update', args.refresh)
}

export function v2CompareAndSwap(ctx: ApplyContext, args: V2CasArgs): V2Result {
  const ks = ctx.keyspace
  const key = writableKey(ks, args.key)
  const node = ks.resolve(key)
  if (node.dir) throw new KvError('KV_NOT_FILE', key, ks.revision)
  checkCompare(node, args, ks.revision)
  const value = args.refresh === true ? node.value : args.value
  return rewrite(ctx, node, value, args.ttlMs, 'compareAndSwap', args.refresh)
}

export function v2Delete(ctx: ApplyContext, args: V2DeleteArgs): V2Result {
  const ks = ctx.keyspace
  const key = writableKey(ks, args.key)
  const recursive = args.recursive === true
  const dir = args.dir === true || recursive
  const node = ks.resolve(key)
  if (node.dir) {
    if (!dir) throw new KvError('KV_NOT_FILE', key, ks.revision)
    if ((node.children?.size ?? 0) > 0 && !recursive) throw new KvError('KV_DIR_NOT_EMPTY', key, ks.revision)
  }
  return remove(ctx, node, 'delete')
}

export function v2CompareAndDelete(ctx: ApplyContext, args: V2CadArgs): V2Result {
  const ks = ctx.keyspace
  const key = normalizeKey(args.key, ks.revision)
  const node = ks.resolve(key)
  if (node.dir) throw new KvError('KV_NOT_FILE', key, ks.revision)
  checkCompare(node, args, ks.revision)
  return remove(ctx, node, 'compareAndDelete')
}

/**
 * Expires one key (file or directory, with everything below it) if it is still the version the
 * leader saw (`modRevision`) and its deadline has passed by the command's clock. Returns whether
 * it expired; a key refreshed, replaced or removed since the leader looked is left alone.
 */
export function v2ExpireKey(ctx: ApplyContext, key: string, modRevision: number): boolean {
  const node = ctx.keyspace.get(key)
  if (node === undefined || node === ctx.keyspace.root || node.modRevision !== modRevision) return false
  if (node.deadlineMs === undefined || node.deadlineMs > ctx.nowMs) return false
  remove(ctx, node, 'expire')
  return true
}

/** etcd's Compare: a given prevValue and a given (non-zero) prevIndex must both match. */
function checkCompare(node: KvNode, args: V2CompareArgs, index: number): void {
  const prevValue = args.prevValue ?? ''
  const prevIndex = args.prevIndex ?? 0
  const valueMatch = prevValue === '' || node.value === prevValue
  const indexMatch = prevIndex === 0 || node.modRevision === prevIndex
  if (valueMatch && indexMatch) return
  let cause: string
  if (valueMatch) cause = `[${prevIndex} != ${node.modRevision}]`
  else if (indexMatch) cause = `[${prevValue} != ${node.value}]`
  else cause = `[${prevValue} != ${node.value}] [${prevIndex} != ${node.modRevision}]`
  throw new KvError('KV_COMPARE_FAILED', cause, index)
}

interface CreateMode {
  replace: boolean
  action: V2WriteAction
  refresh?: boolean | undefined
}

/** etcd's internalCreate: a new node at a clean key, replacing a file when `replace`. */
function internalCreate(
  ctx: ApplyContext,
  key: string,
  dir: boolean,
  value: string,
  ttlMs: number | undefined,
  mode: CreateMode,
): V2Result {
  const ks = ctx.keyspace
  if (key === rootKey) throw new KvError('KV_ROOT_READ_ONLY', rootKey, ks.revision)
  const existing = ks.get(key)
  // An existing node's ancestors are directories (the keyspace's invariant), and it adds none.
  if (existing === undefined) ks.checkAncestors(key)
  else {
    if (!mode.replace) throw new KvError('KV_NODE_EXISTS', key, ks.revision)
    if (existing.dir) throw new KvError('KV_NOT_FILE', key, ks.revision)
  }
  const stored = dir ? '' : value
  const growth =
    existing === undefined ? ks.growthOf(key, stored) : nodeSizeBytes(key, stored) - existing.sizeBytes
  ks.checkSpace(growth)
  const prevNode = existing === undefined ? undefined : viewOf(existing)
  const revision = ctx.nextRevision()
  const fields = { dir, value: stored, revision, deadlineMs: ctx.deadlineOf(ttlMs), lease: 0 }
  let node: KvNode
  if (existing !== undefined && !dir) node = ks.replaceFile(existing, fields)
  else {
    if (existing !== undefined) ks.removeSubtree(existing)
    node = ks.insert(key, fields)
  }
  return commit(
    ctx,
    new KvEvent(mode.action, revision, viewOf(node), prevNode, ctx.nowMs, mode.refresh === true),
  )
}

/** Update and compareAndSwap: a new value (files) and TTL on the same node. */
function rewrite(
  ctx: ApplyContext,
  node: KvNode,
  value: string,
  ttlMs: number | undefined,
  action: V2WriteAction,
  refresh: boolean | undefined,
): V2Result {
  const ks = ctx.keyspace
  if (!node.dir) ks.checkSpace(nodeSizeBytes(node.key, value) - node.sizeBytes)
  const prevNode = viewOf(node)
  const revision = ctx.nextRevision()
  ks.write(node, value, revision)
  ks.setDeadline(node, ctx.deadlineOf(ttlMs))
  return commit(ctx, new KvEvent(action, revision, viewOf(node), prevNode, ctx.nowMs, refresh === true))
}

function remove(ctx: ApplyContext, node: KvNode, action: V2WriteAction): V2Result {
  const prevNode = viewOf(node)
  const revision = ctx.nextRevision()
  const eventNode = removalViewOf(node, revision)
  ctx.keyspace.removeSubtree(node)
  return commit(ctx, new KvEvent(action, revision, eventNode, prevNode, ctx.nowMs))
}

function commit(ctx: ApplyContext, event: KvEvent): V2Result {
  ctx.record(event)
  return resultOf(event, ctx.keyspace.revision)
}

export function resultOf(event: KvEvent, index: number): V2Result {
  const result: { -readonly [K in keyof V2Result]: V2Result[K] } = {
    action: event.action,
    node: event.node,
    index,
  }
  if (event.prevNode !== undefined) result.prevNode = event.prevNode
  if (event.refresh) result.refresh = true
  return result
}

/** A clean key that is not the root (etcd's readonlySet check). */
function writableKey(ks: Keyspace, raw: string): string {
  const key = normalizeKey(raw, ks.revision)
  if (key === rootKey) throw new KvError('KV_ROOT_READ_ONLY', rootKey, ks.revision)
  return key
}

/** A directory with its visible children (recursively when asked), in key order. */
function listingOf(dir: KvNode, recursive: boolean): V2Node {
  const names = [...(dir.children?.keys() ?? [])].filter((name) => !isHiddenName(name)).sort()
  const nodes = names.map((name) => {
    const child = dir.children?.get(name) as KvNode
    return child.dir && recursive ? listingOf(child, true) : viewOf(child)
  })
  return { ...viewOf(dir), nodes }
}
