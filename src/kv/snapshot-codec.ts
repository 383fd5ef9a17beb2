/**
 * The keyspace snapshot format: the whole replicated state of the kv state machine, msgpack-encoded.
 *
 * It holds the applied index together with the state it describes (so they are restored
 * atomically), the revision, every node (key order, so parents come first), the leases and the
 * lease id counter, the members, and the history window (compaction point and events), so a member
 * restored from it answers every later command and watch exactly as one that applied the log.
 *
 * Taking a snapshot has two steps so the encoding can run off the Ready loop: captureSnapshot()
 * copies what is mutable (node rows, lease rows, members) and keeps references to what is not (the
 * history's events are immutable), synchronously; snapshotPieces() then encodes the capture one
 * chunk of rows at a time, and encodeSnapshotAsync() yields to the event loop between chunks.
 *
 * Encoding is deterministic: the same state gives the same bytes (rows are arrays in a fixed
 * order, absent values are null, never undefined, chunks end by the same rule). Decoding validates
 * every field and throws KV_SNAPSHOT_INVALID rather than return a partial state.
 *
 * Layout (format 2): a concatenation of msgpack values, no outer container:
 *   1. header { format: 2, appliedIndex, revision, nextLeaseId, compactedRevision, nodeCount,
 *      eventCount, leases: [id, ttlMs, deadlineMs][], members: [id, name, peerUrls, clientUrls, isLearner][] }
 *   2. node chunks: arrays of at most snapshotChunkRows rows (fewer once snapshotChunkBytes)
 *      [key, dir, value, createRevision, modRevision, version, deadlineMs|null, lease], nodeCount in all
 *   3. event chunks: arrays of at most snapshotChunkRows rows (fewer once snapshotChunkBytes)
 *      [revision, action, nowMs, refresh, node, prevNode|null], eventCount in all,
 *      with event nodes as [key, dir, value, createdIndex, modifiedIndex, expiresAtMs|null] where
 *      value is null (none), a string, or true: "the value of the snapshot's node with this key",
 *      allowed only when that node's modRevision is the view's modifiedIndex (the key still holds
 *      the value this event wrote, so it is stored once, and shared again when decoded).
 * Format 1 (one map: the header's fields plus nodes and history.events inline, every value
 * written out) is still decoded, so data directories from before format 2 start.
 */

import { setImmediate as nextTurn } from 'node:timers/promises'
import { KvEvent } from './events.ts'
import { describeValue } from './field-reader.ts'
import type { KvNode, NodeRecord } from './keyspace.ts'
import { KvError } from './kv-error.ts'
import type { Lease } from './leases.ts'
import type { Member } from './members.ts'
import { isPlainObject, packReusing, packValue, unpackValues } from './msgpack.ts'
import type { V2Node, V2NodeDraft, V2WriteAction } from './v2-node.ts'

export const snapshotFormat = 2
/**
 * A format-2 chunk is what one event-loop turn encodes: at most this many rows ...
 */
export const snapshotChunkRows = 2_000
/**
 * ... and no more rows once their values and keys add up to this many characters (a chunk passes
 * it by at most one row). Measured with 256-byte values: 2,000 events (about 1.1 MB encoded) kept
 * the event loop 2.6 to 28 ms per chunk, every request in flight waiting; 256 Ki characters keeps a
 * chunk to a few milliseconds whatever the value sizes.
 */
export const snapshotChunkBytes = 256 * 1024

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

/** A state captured for encoding: safe to encode later, while the live state moves on. */
export interface CapturedSnapshot {
  readonly appliedIndex: number
  readonly header: Record<string, unknown>
  readonly nodeRows: readonly unknown[][]
  readonly events: readonly KvEvent[]
  /** 1 at i: events[i].node's value is its key's node's value in nodeRows (encoded as true). */
  readonly sharedValue: Uint8Array
}

export function captureSnapshot(state: {
  appliedIndex: number
  revision: number
  nextLeaseId: number
  nodes: readonly KvNode[]
  leases: readonly Lease[]
  members: readonly Member[]
  compactedRevision: number
  events: readonly KvEvent[]
  /** The live node at a key (the capture is taken synchronously, so it is the captured one). */
  nodeAt: (key: string) => KvNode | undefined
}): CapturedSnapshot {
  const events = state.events
  const sharedValue = new Uint8Array(events.length)
  for (let i = 0; i < events.length; i++) {
    const view = (events[i] as KvEvent).node
    if (view.value === undefined || view.dir === true) continue
    const node = state.nodeAt(view.key)
    if (node !== undefined && !node.dir && node.modRevision === view.modifiedIndex) sharedValue[i] = 1
  }
  return {
    appliedIndex: state.appliedIndex,
    header: {
      format: snapshotFormat,
      appliedIndex: state.appliedIndex,
      revision: state.revision,
      nextLeaseId: state.nextLeaseId,
      compactedRevision: state.compactedRevision,
      nodeCount: state.nodes.length,
      eventCount: events.length,
      leases: state.leases.map((l) => [l.id, l.ttlMs, l.deadlineMs]),
      members: state.members.map((m) => [m.id, m.name, [...m.peerUrls], [...m.clientUrls], m.isLearner]),
    },
    nodeRows: state.nodes.map((n) => [
      n.key,
      n.dir,
      n.value,
      n.createRevision,
      n.modRevision,
      n.version,
      n.deadlineMs ?? null,
      n.lease,
    ]),
    events,
    sharedValue,
  }
}

/**
 * The encoded snapshot, one msgpack value at a time: the header, then chunks of rows. With
 * `scratch`, every piece is encoded into that one buffer (packReusing): a piece is valid only until
 * the next is asked for, and memory stays at one chunk however large the snapshot.
 */
export function* snapshotPieces(captured: CapturedSnapshot, scratch?: Buffer): Generator<Uint8Array> {
  const pack = (value: unknown) => (scratch === undefined ? packValue(value) : packReusing(value, scratch))
  yield pack(captured.header)
  const { nodeRows, events, sharedValue } = captured
  for (let i = 0; i < nodeRows.length; ) {
    let size = 0
    let end = i
    while (end < nodeRows.length && end - i < snapshotChunkRows && size < snapshotChunkBytes) {
      const row = nodeRows[end++] as [string, boolean, string]
      size += row[0].length + row[2].length + rowOverheadChars
    }
    yield pack(nodeRows.slice(i, end))
    i = end
  }
  for (let i = 0; i < events.length; ) {
    const rows: unknown[] = []
    let size = 0
    let j = i
    for (; j < events.length && j - i < snapshotChunkRows && size < snapshotChunkBytes; j++) {
      const e = events[j] as KvEvent
      const shared = sharedValue[j] === 1
      rows.push([
        e.revision,
        e.action,
        e.nowMs,
        e.refresh,
        encodeView(e.node, shared),
        e.prevNode === undefined ? null : encodeView(e.prevNode, false),
      ])
      size += viewChars(e.node, shared) + (e.prevNode === undefined ? 0 : viewChars(e.prevNode, false))
    }
    yield pack(rows)
    i = j
  }
}

/** What a row costs besides its strings, in the units of snapshotChunkBytes (a rough count). */
const rowOverheadChars = 32

function viewChars(view: V2NodeDraft, shared: boolean): number {
  const value = shared ? 0 : (view.value?.length ?? 0)
  return view.key.length + value + rowOverheadChars
}

/** Encodes a capture at once (tests, and callers that do not mind blocking). */
export function encodeSnapshotNow(captured: CapturedSnapshot): Uint8Array {
  return Buffer.concat([...snapshotPieces(captured)])
}

/** Bytes of the buffer snapshotStream() encodes every piece into (grown when a chunk needs more). */
export const snapshotScratchBytes = 1024 * 1024

/**
 * The encoding a piece per event-loop turn, so timers and sockets are served in between; every
 * piece is a view of one reused buffer, valid until the next is asked for (write it, then ask).
 */
export async function* snapshotStream(captured: CapturedSnapshot): AsyncGenerator<Uint8Array> {
  const scratch = Buffer.allocUnsafeSlow(snapshotScratchBytes)
  for (const piece of snapshotPieces(captured, scratch)) {
    yield piece
    await nextTurn()
  }
}

export function decodeSnapshot(data: Uint8Array): KvSnapshotState {
  let values: unknown[]
  try {
    values = unpackValues(data)
  } catch (error) {
    throw invalid(`not msgpack (${(error as Error).message})`)
  }
  const head = values[0]
  if (!isPlainObject(head)) throw invalid('not a map')
  if (head.format === 1 && values.length === 1) return decodeFormat1(head)
  if (head.format !== snapshotFormat)
    throw invalid(`format ${describeValue(head.format)}, expected ${snapshotFormat}`)
  const nodeCount = int(head.nodeCount, 'nodeCount')
  const eventCount = int(head.eventCount, 'eventCount')
  let next = 1
  const takeRows = (count: number, what: string, width: number): unknown[][] => {
    const out: unknown[][] = []
    while (out.length < count) {
      if (next >= values.length) throw invalid(`${what}: ${out.length} of ${count} rows`)
      const chunk = values[next++]
      if (!Array.isArray(chunk) || chunk.length === 0 || chunk.length > count - out.length)
        throw invalid(`${what}: a malformed chunk`)
      for (const item of chunk) out.push(row(item, what, width))
    }
    return out
  }
  const nodes = takeRows(nodeCount, 'nodes', 8).map(decodeNode)
  const eventRows = takeRows(eventCount, 'events', 6)
  if (next !== values.length) throw invalid(`${values.length - next} values after the events`)
  const byKey = new Map<string, NodeRecord>()
  for (const node of nodes) byKey.set(node.key, node)
  const sharedValueOf = (view: V2NodeDraft): string => {
    const node = byKey.get(view.key)
    if (node === undefined || node.dir || node.modRevision !== view.modifiedIndex)
      throw invalid(
        `event at ${view.modifiedIndex} shares the value of ${view.key}, which has none from then`,
      )
    return node.value
  }
  return {
    appliedIndex: int(head.appliedIndex, 'appliedIndex'),
    revision: int(head.revision, 'revision'),
    nextLeaseId: int(head.nextLeaseId, 'nextLeaseId'),
    nodes,
    leases: rows(head.leases, 'leases', 3).map(decodeLease),
    members: rows(head.members, 'members', 5).map(decodeMember),
    compactedRevision: int(head.compactedRevision, 'compactedRevision'),
    events: eventRows.map((r) => decodeEvent(r, sharedValueOf)),
  }
}

function decodeFormat1(decoded: Record<string, unknown>): KvSnapshotState {
  const history = decoded.history
  if (!isPlainObject(history)) throw invalid('history is not a map')
  const noSharing = (): string => {
    throw invalid('format 1 shares no values')
  }
  return {
    appliedIndex: int(decoded.appliedIndex, 'appliedIndex'),
    revision: int(decoded.revision, 'revision'),
    nextLeaseId: int(decoded.nextLeaseId, 'nextLeaseId'),
    nodes: rows(decoded.nodes, 'nodes', 8).map(decodeNode),
    leases: rows(decoded.leases, 'leases', 3).map(decodeLease),
    members: rows(decoded.members, 'members', 5).map(decodeMember),
    compactedRevision: int(history.compactedRevision, 'compactedRevision'),
    events: rows(history.events, 'events', 6).map((r) => decodeEvent(r, noSharing)),
  }
}

function decodeLease(r: unknown[]): LeaseRecord {
  return { id: int(r[0], 'lease id'), ttlMs: int(r[1], 'lease ttl'), deadlineMs: int(r[2], 'lease deadline') }
}

function encodeView(v: V2Node, sharedValue: boolean): unknown[] {
  const value = sharedValue ? true : (v.value ?? null)
  return [v.key, v.dir === true, value, v.createdIndex, v.modifiedIndex, v.expiresAtMs ?? null]
}

function decodeView(value: unknown, what: string, sharedValueOf: (view: V2NodeDraft) => string): V2Node {
  const r = row(value, what, 6)
  const view: V2NodeDraft = {
    key: str(r[0], `${what} key`),
    createdIndex: int(r[3], what),
    modifiedIndex: int(r[4], what),
  }
  if (bool(r[1], what)) view.dir = true
  if (r[2] === true) view.value = sharedValueOf(view)
  else if (r[2] !== null) view.value = str(r[2], `${what} value`)
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

function decodeEvent(r: unknown[], sharedValueOf: (view: V2NodeDraft) => string): KvEvent {
  const action = r[1]
  if (!writeActions.includes(action as V2WriteAction)) throw invalid(`event action ${describeValue(action)}`)
  const node = decodeView(r[4], 'event node', sharedValueOf)
  const noSharing = (): string => {
    throw invalid('a prevNode cannot share a value')
  }
  const prevNode = r[5] === null ? undefined : decodeView(r[5], 'event prevNode', noSharing)
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
