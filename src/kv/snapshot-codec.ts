/**
 * The keyspace snapshot format: the whole replicated state of the kv state machine, msgpack-encoded.
 *
 * It holds the applied index together with the state it describes (so they are restored
 * atomically), the revision, every node (key order, so parents come first), the leases and the
 * lease id counter, the members, and the history window (compaction point and events), so a member
 * restored from it answers every later command and watch exactly as one that applied the log.
 *
 * Encoding is deterministic: the same state gives the same bytes (rows are arrays in a fixed
 * order, absent values are null, never undefined). Decoding validates every field and throws
 * KV_SNAPSHOT_INVALID rather than return a partial state.
 *
 * Layout (format 1): { format, appliedIndex, revision, nextLeaseId,
 *   nodes:   [key, dir, value, createRevision, modRevision, version, deadlineMs|null, lease][],
 *   leases:  [id, ttlMs, deadlineMs][],
 *   members: [id, name, peerUrls, clientUrls, isLearner][],
 *   history: { compactedRevision, events: [revision, action, nowMs, refresh, node, prevNode|null][] } }
 * with event nodes as [key, dir, value|null, createdIndex, modifiedIndex, expiresAtMs|null].
 */

import { KvEvent } from './events.ts'
import { describeValue } from './field-reader.ts'
import type { KvNode, NodeRecord } from './keyspace.ts'
import { KvError } from './kv-error.ts'
import type { Lease } from './leases.ts'
import type { Member } from './members.ts'
import { isPlainObject, packValue, unpackValue } from './msgpack.ts'
import type { V2Node, V2NodeDraft, V2WriteAction } from './v2-node.ts'

export const snapshotFormat = 1

export interface LeaseRecord {
  id: number
  ttlMs: number
  deadlineMs: number
}

export interface KvSnapshotState {
  appliedIndex: number
  revision: number
  nextLeaseId: number
  nodes: readonly NodeRecord[]
  leases: readonly LeaseRecord[]
  members: readonly Member[]
  compactedRevision: number
  events: readonly KvEvent[]
}

const writeActions: readonly V2WriteAction[] = [
  'set',
  'create',
  'update',
  'compareAndSwap',
  'delete',
  'compareAndDelete',
  'expire',
]

export function encodeSnapshot(state: {
  appliedIndex: number
  revision: number
  nextLeaseId: number
  nodes: readonly KvNode[]
  leases: readonly Lease[]
  members: readonly Member[]
  compactedRevision: number
  events: readonly KvEvent[]
}): Uint8Array {
  return packValue({
    format: snapshotFormat,
    appliedIndex: state.appliedIndex,
    revision: state.revision,
    nextLeaseId: state.nextLeaseId,
    nodes: state.nodes.map((n) => [
      n.key,
      n.dir,
      n.value,
      n.createRevision,
      n.modRevision,
      n.version,
      n.deadlineMs ?? null,
      n.lease,
    ]),
    leases: state.leases.map((l) => [l.id, l.ttlMs, l.deadlineMs]),
    members: state.members.map((m) => [m.id, m.name, m.peerUrls, m.clientUrls, m.isLearner]),
    history: {
      compactedRevision: state.compactedRevision,
      events: state.events.map((e) => [
        e.revision,
        e.action,
        e.nowMs,
        e.refresh,
        encodeView(e.node),
        e.prevNode === undefined ? null : encodeView(e.prevNode),
      ]),
    },
  })
}

export function decodeSnapshot(data: Uint8Array): KvSnapshotState {
  let decoded: unknown
  try {
    decoded = unpackValue(data)
  } catch (error) {
    throw invalid(`not msgpack (${(error as Error).message})`)
  }
  if (!isPlainObject(decoded)) throw invalid('not a map')
  if (decoded.format !== snapshotFormat)
    throw invalid(`format ${describeValue(decoded.format)}, expected ${snapshotFormat}`)
  const history = decoded.history
  if (!isPlainObject(history)) throw invalid('history is not a map')
  return {
    appliedIndex: int(decoded.appliedIndex, 'appliedIndex'),
    revision: int(decoded.revision, 'revision'),
    nextLeaseId: int(decoded.nextLeaseId, 'nextLeaseId'),
    nodes: rows(decoded.nodes, 'nodes', 8).map(decodeNode),
    leases: rows(decoded.leases, 'leases', 3).map((r) => ({
      id: int(r[0], 'lease id'),
      ttlMs: int(r[1], 'lease ttl'),
      deadlineMs: int(r[2], 'lease deadline'),
    })),
    members: rows(decoded.members, 'members', 5).map(decodeMember),
    compactedRevision: int(history.compactedRevision, 'compactedRevision'),
    events: rows(history.events, 'events', 6).map(decodeEvent),
  }
}

function encodeView(v: V2Node): unknown[] {
  return [v.key, v.dir === true, v.value ?? null, v.createdIndex, v.modifiedIndex, v.expiresAtMs ?? null]
}

function decodeView(value: unknown, what: string): V2Node {
  const r = row(value, what, 6)
  const view: V2NodeDraft = {
    key: str(r[0], `${what} key`),
    createdIndex: int(r[3], what),
    modifiedIndex: int(r[4], what),
  }
  if (bool(r[1], what)) view.dir = true
  if (r[2] !== null) view.value = str(r[2], `${what} value`)
  if (r[5] !== null) view.expiresAtMs = int(r[5], `${what} expiry`)
  return view
}

function decodeNode(r: unknown[]): NodeRecord {
  return {
    key: str(r[0], 'node key'),
    dir: bool(r[1], 'node dir'),
    value: str(r[2], 'node value'),
    createRevision: int(r[3], 'node createRevision'),
    modRevision: int(r[4], 'node modRevision'),
    version: int(r[5], 'node version'),
    deadlineMs: r[6] === null ? undefined : int(r[6], 'node deadline'),
    lease: int(r[7], 'node lease'),
  }
}

function decodeMember(r: unknown[]): Member {
  const urls = (value: unknown, what: string): string[] => {
    if (!Array.isArray(value)) throw invalid(`${what} is not a list`)
    return value.map((u) => str(u, what))
  }
  return {
    id: int(r[0], 'member id'),
    name: str(r[1], 'member name'),
    peerUrls: urls(r[2], 'member peerUrls'),
    clientUrls: urls(r[3], 'member clientUrls'),
    isLearner: bool(r[4], 'member isLearner'),
  }
}

function decodeEvent(r: unknown[]): KvEvent {
  const action = r[1]
  if (!writeActions.includes(action as V2WriteAction)) throw invalid(`event action ${describeValue(action)}`)
  const node = decodeView(r[4], 'event node')
  const prevNode = r[5] === null ? undefined : decodeView(r[5], 'event prevNode')
  const revision = int(r[0], 'event revision')
  if (node.modifiedIndex !== revision)
    throw invalid(`event at ${revision} with node at ${node.modifiedIndex}`)
  return new KvEvent(
    action as V2WriteAction,
    revision,
    node,
    prevNode,
    int(r[2], 'event now'),
    bool(r[3], 'refresh'),
  )
}

function rows(value: unknown, what: string, width: number): unknown[][] {
  if (!Array.isArray(value)) throw invalid(`${what} is not a list`)
  return value.map((item) => row(item, what, width))
}

function row(value: unknown, what: string, width: number): unknown[] {
  if (!Array.isArray(value) || value.length !== width) throw invalid(`${what}: a row is not ${width} fields`)
  return value
}

function int(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw invalid(`${what} is not an index`)
  return value
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw invalid(`${what} is not a string`)
  return value
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw invalid(`${what} is not a boolean`)
  return value
}

function invalid(detail: string): KvError {
  return new KvError('KV_SNAPSHOT_INVALID', detail, 0)
}
