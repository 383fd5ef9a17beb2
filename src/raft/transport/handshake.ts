/**
 * The handshake that opens every connection, and the acceptor's decision.
 *
 *   dialer → acceptor   hello       { protocol: 1, clusterId, from, to, stream: 'messages' | 'snapshot' }
 *   acceptor → dialer   helloReply  { ok: true } | { ok: false, reason }   (a Reply)
 *
 * The acceptor accepts only its own cluster id, only `to === its member id`, never `from === its
 * member id` (two members with one id), and only protocol 1. On refusal it sends the reason, then
 * closes. No other frame is sent or accepted on a connection before its handshake completes, and
 * afterwards every inbound message must carry the handshake's `from` and this member's id as `to`.
 */
import type { NodeId } from '../core/types.ts'
import { clusterIdBytesMax } from './options.ts'
import { isNodeId } from './validate.ts'

export const protocolVersion = 1

/** The two kinds of connection: a long-lived message stream, or one snapshot transfer. */
export type StreamKind = 'messages' | 'snapshot'

export interface Hello {
  protocol: number
  clusterId: string
  from: NodeId
  to: NodeId
  stream: StreamKind
}

/** The answer to a hello, and to a whole snapshot stream: accepted, or refused with a reason. */
export type Reply = { ok: true } | { ok: false; reason: string }

/** Longest refusal reason accepted from a peer (it is logged). */
export const reasonBytesMax = 512

export function validateHello(x: unknown): Hello | undefined {
  if (typeof x !== 'object' || x === null) return undefined
  const h = x as Record<string, unknown>
  if (typeof h.protocol !== 'number' || !Number.isSafeInteger(h.protocol)) return undefined
  if (typeof h.clusterId !== 'string' || h.clusterId.length > clusterIdBytesMax) return undefined
  if (!isNodeId(h.from) || !isNodeId(h.to)) return undefined
  if (h.stream !== 'messages' && h.stream !== 'snapshot') return undefined
  return { protocol: h.protocol, clusterId: h.clusterId, from: h.from, to: h.to, stream: h.stream }
}

export function validateReply(x: unknown): Reply | undefined {
  if (typeof x !== 'object' || x === null) return undefined
  const r = x as Record<string, unknown>
  if (r.ok === true) return { ok: true }
  if (r.ok !== false || typeof r.reason !== 'string') return undefined
  return { ok: false, reason: r.reason.slice(0, reasonBytesMax) }
}

/** Why this member refuses `hello`, or undefined to accept it. */
export function helloRefusal(
  hello: Hello,
  local: { clusterId: string; memberId: NodeId },
): string | undefined {
  if (hello.protocol !== protocolVersion) {
    return `protocol ${hello.protocol} is not supported (this member speaks ${protocolVersion})`
  }
  if (hello.clusterId !== local.clusterId) {
    return `cluster id ${JSON.stringify(hello.clusterId)} is not this cluster's (${JSON.stringify(local.clusterId)})`
  }
  if (hello.to !== local.memberId) return `member ${hello.to} was expected, this is member ${local.memberId}`
  if (hello.from === local.memberId) return `the dialer claims this member's own id ${local.memberId}`
  return undefined
}
