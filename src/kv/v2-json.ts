/**
 * Renders v2 results and events as etcd 2.3 serializes them, so the HTTP layer writes them as is.
 *
 * etcd's NodeExtern fields are `omitempty`, in this order: key, value, dir, expiration, ttl, nodes,
 * modifiedIndex, createdIndex. So: the root's key ("" after etcd trims its "/1" prefix) and its
 * zero indexes are left out; `value` is present for files, even when empty; `nodes` only when
 * non-empty; `expiration` (RFC 3339, UTC, Go's trimmed fractional seconds) and `ttl`
 * (ceil of the remaining seconds; left out when 0 or less, as Go's omitempty does with 0) only for
 * nodes with a deadline. The Event body is {action, node, prevNode?, refresh?}.
 */
import { rootKey } from './key-path.ts'
import type { V2Action, V2Node } from './v2-node.ts'

export interface V2NodeJson {
  key?: string
  value?: string
  dir?: true
  expiration?: string
  ttl?: number
  nodes?: V2NodeJson[]
  modifiedIndex?: number
  createdIndex?: number
}

export interface V2EventJson {
  action: V2Action
  node: V2NodeJson
  prevNode?: V2NodeJson
  refresh?: true
}

/** Seconds left until the deadline, rounded up (etcd's expirationAndTTL). */
export function ttlSeconds(deadlineMs: number, nowMs: number): number {
  return Math.ceil((deadlineMs - nowMs) / 1000)
}

/** Go's time.Time JSON form in UTC: RFC 3339 with trailing zeros of the fraction trimmed. */
export function rfc3339(ms: number): string {
  const iso = new Date(ms).toISOString()
  return iso.replace(/\.?0+Z$/, 'Z')
}

export function renderNode(node: V2Node, nowMs: number): V2NodeJson {
  const out: V2NodeJson = {}
  if (node.key !== rootKey) out.key = node.key
  if (node.value !== undefined) out.value = node.value
  if (node.dir === true) out.dir = true
  if (node.expiresAtMs !== undefined) {
    out.expiration = rfc3339(node.expiresAtMs)
    const ttl = ttlSeconds(node.expiresAtMs, nowMs)
    if (ttl > 0) out.ttl = ttl
  }
  if (node.nodes !== undefined && node.nodes.length > 0)
    out.nodes = node.nodes.map((n) => renderNode(n, nowMs))
  if (node.modifiedIndex !== 0) out.modifiedIndex = node.modifiedIndex
  if (node.createdIndex !== 0) out.createdIndex = node.createdIndex
  return out
}

export function renderEvent(
  result: { action: V2Action; node: V2Node; prevNode?: V2Node | undefined; refresh?: boolean | undefined },
  nowMs: number,
): V2EventJson {
  const out: V2EventJson = { action: result.action, node: renderNode(result.node, nowMs) }
  if (result.prevNode !== undefined) out.prevNode = renderNode(result.prevNode, nowMs)
  if (result.refresh === true) out.refresh = true
  return out
}
