/**
 * The etcd v2 view of a node, as plain data: what results, events and the history carry.
 *
 * Field names follow etcd's JSON (`createdIndex`, `modifiedIndex`, `nodes`); the one difference is
 * `expiresAtMs`, the absolute deadline, from which v2-json.ts computes etcd's `expiration` and `ttl`
 * against a clock. Views are immutable snapshots of a node at one revision (never mutated after
 * they are built, shared by results, history and every watcher).
 */
import type { KvNode } from './keyspace.ts'

export type V2WriteAction =
  | 'set'
  | 'create'
  | 'update'
  | 'compareAndSwap'
  | 'delete'
  | 'compareAndDelete'
  | 'expire'

export type V2Action = 'get' | V2WriteAction

export interface V2Node {
  readonly key: string
  /** Files only (absent for directories and in delete/expire event nodes). */
  readonly value?: string
  readonly dir?: true
  /** Listed directories only: children in key order, hidden names left out. */
  readonly nodes?: readonly V2Node[]
  readonly createdIndex: number
  readonly modifiedIndex: number
  readonly expiresAtMs?: number
}

/** The result of a v2 read or write, before rendering. */
export interface V2Result {
  readonly action: V2Action
  readonly node: V2Node
  readonly prevNode?: V2Node
  /** Set only on refresh writes (TTL reset without notifying watchers). */
  readonly refresh?: true
  /** The store revision after the operation (etcd's X-Etcd-Index). */
  readonly index: number
}

/** A V2Node being built field by field (its optional fields are set only when present). */
export interface V2NodeDraft {
  key: string
  value?: string
  dir?: true
  createdIndex: number
  modifiedIndex: number
  expiresAtMs?: number
}

/** etcd's Repr(false, false): the node without children. */
export function viewOf(node: KvNode): V2Node {
  const view: V2NodeDraft = {
    key: node.key,
    createdIndex: node.createRevision,
    modifiedIndex: node.modRevision,
  }
  if (node.dir) view.dir = true
  else view.value = node.value
  if (node.deadlineMs !== undefined) view.expiresAtMs = node.deadlineMs
  return view
}

/** The node of a delete/expire event: key, dir flag, created and the deleting revision. */
export function removalViewOf(node: KvNode, revision: number): V2Node {
  return node.dir
    ? { key: node.key, dir: true, createdIndex: node.createRevision, modifiedIndex: revision }
    : { key: node.key, createdIndex: node.createRevision, modifiedIndex: revision }
}

/** Whether etcd answers 201 Created: a create, or a set that had no previous node. */
export function isCreated(result: Pick<V2Result, 'action' | 'prevNode'>): boolean {
  return result.action === 'create' || (result.action === 'set' && result.prevNode === undefined)
}
