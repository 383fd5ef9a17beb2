/**
 * The kv state machine: what the node driver applies committed entries to (src/raft/state-machine.ts).
 *
 * apply(entry):
 *   - a normal entry with empty data (a new leader's no-op) only advances appliedIndex;
 *   - a normal entry with data is one command (commands.ts): decoded, executed, its events appended
 *     to the history and fanned out to watchers; its result (or typed error) is returned with the
 *     proposer's request id so the driver can answer it;
 *   - a conf entry records the membership change (members.ts).
 * Undecodable data is answered with KV_COMMAND_INVALID and changes nothing but appliedIndex; an
 * operating error (key not found, compare failed...) is a result, never a throw. Only broken
 * invariants (programmer errors) throw.
 *
 * Determinism: apply reads no clock, no randomness and does no IO; the only time it knows is the
 * command's stamped `now`. Expiry is decided outside apply: the leader (with a confirmed quorum)
 * calls expiredAt(now) and proposes an `expire` command (expireCommand builds it).
 *
 * Invariants: appliedIndex increases by one per apply; snapshot() holds appliedIndex with the state
 * it describes; restore() replaces everything or nothing.
 */
import type { Entry, NodeId } from '../raft/core/types.ts'
import type { SnapshotCapture, StateMachine } from '../raft/state-machine.ts'
import { ApplyContext } from './apply-context.ts'
import {
  type Command,
  type CommandOp,
  type CommandResult,
  decodeCommand,
  type ExpireKey,
  requestIdOf,
} from './commands.ts'
import { executeCommand } from './execute.ts'
import { History } from './history.ts'
import { normalizeKey } from './key-path.ts'
import { Keyspace, type KvNode } from './keyspace.ts'
import { KvError } from './kv-error.ts'
import type { LeaseInfo } from './leases.ts'
import { type KvConfig, kvLimits, makeKvConfig } from './limits.ts'
import { type Member, MemberTable } from './members.ts'
import { type RangeRequest, type RangeResult, range } from './mvcc.ts'
import {
  type CapturedSnapshot,
  captureSnapshot,
  decodeSnapshot,
  encodeSnapshotNow,
  type KvSnapshotState,
  snapshotStream,
} from './snapshot-codec.ts'
import type { V2Result } from './v2-node.ts'
import { type V2GetOptions, v2Get } from './v2-store.ts'
import { WatchHub, type WatchRequest } from './watch-hub.ts'
import { type LastChange, type WatchSpec, watchMatches } from './watch-match.ts'
import type { Watcher } from './watcher.ts'

export type ApplyResult =
  | { type: 'noop' }
  | { type: 'conf'; nodeId: number; member: Member | undefined }
  | { type: 'command'; id: string; op: CommandOp; ok: true; result: CommandResult }
  | { type: 'command'; id: string; op: CommandOp; ok: false; error: KvError }
  /** Data that is not a valid command; `id` when the proposer's request id could still be read. */
  | { type: 'invalid'; id: string | undefined; error: KvError }

/** What the leader should expire now: keys with a passed TTL deadline and leases past theirs. */
export interface ExpireBatch {
  keys: ExpireKey[]
  leases: number[]
}

export class KvStateMachine implements StateMachine {
  readonly config: KvConfig
  #applied = 0
  #keyspace = new Keyspace()
  #members = new MemberTable()
  readonly #history: History
  readonly #hub: WatchHub

  constructor(config: Partial<KvConfig> = {}) {
    this.config = makeKvConfig(config)
    this.#history = new History(this.config)
    this.#hub = new WatchHub(this.config, this.#history, () => this.#keyspace.revision)
  }

  get appliedIndex(): number {
    return this.#applied
  }

  /** The store revision (etcd's X-Etcd-Index). */
  get revision(): number {
    return this.#keyspace.revision
  }

  get history(): History {
    return this.#history
  }

  get watcherCount(): number {
    return this.#hub.watcherCount
  }

  apply(entry: Entry): ApplyResult {
    if (entry.index !== this.#applied + 1) {
      throw new Error(`kv state machine: applying entry ${entry.index} after ${this.#applied}`)
    }
    this.#applied = entry.index
    if (entry.type === 'conf') {
      if (entry.change === undefined)
        throw new Error(`kv state machine: conf entry ${entry.index} without a change`)
      return {
        type: 'conf',
        nodeId: entry.change.nodeId,
        member: this.#members.applyConfChange(entry.change),
      }
    }
    if (entry.data.byteLength === 0) return { type: 'noop' }
    let command: Command
    try {
      command = decodeCommand(entry.data, this.revision)
    } catch (error) {
      if (error instanceof KvError) return { type: 'invalid', id: requestIdOf(entry.data), error }
      throw error
    }
    return this.#run(command)
  }

  snapshot(): Uint8Array {
    return encodeSnapshotNow(this.#capture())
  }

  captureSnapshot(): SnapshotCapture {
    const captured = this.#capture()
    return {
      appliedIndex: captured.appliedIndex,
      pieces: () => snapshotStream(captured),
      encode: async () => encodeSnapshotNow(captured),
    }
  }

  #capture(): CapturedSnapshot {
    const keyspace = this.#keyspace
    return captureSnapshot({
      appliedIndex: this.#applied,
      revision: keyspace.revision,
      nextLeaseId: keyspace.leases.nextId,
      nodes: keyspace.sortedNodes(),
      leases: keyspace.leases.sorted(),
      members: this.#members.list(),
      compactedRevision: this.#history.compactedRevision,
      events: this.#history.all(),
      nodeAt: (key) => keyspace.get(key),
    })
  }

  restore(data: Uint8Array): void {
    const state = decodeSnapshot(data)
    const keyspace = buildKeyspace(state)
    checkHistory(state)
    const previousRevision = this.#keyspace.revision
    this.#keyspace = keyspace
    this.#members = new MemberTable()
    this.#members.restore(state.members)
    this.#applied = state.appliedIndex
    this.#history.restore(state.compactedRevision, state.events)
    this.#hub.resync(previousRevision)
  }

  /** Keys and leases due at `nowMs`, at most kvLimits.expireBatchMax; undefined if none. */
  expiredAt(nowMs: number): ExpireBatch | undefined {
    const ks = this.#keyspace
    const keys = ks.ttlDue(nowMs, kvLimits.expireBatchMax).map((key) => ({
      key,
      modRevision: (ks.get(key) as KvNode).modRevision,
    }))
    const leases = ks.leases.due(nowMs, kvLimits.expireBatchMax - keys.length)
    return keys.length + leases.length === 0 ? undefined : { keys, leases }
  }

  /** The `expire` command the leader should propose at `nowMs`, or undefined if nothing is due. */
  expireCommand(id: string, nowMs: number): Command | undefined {
    const batch = this.expiredAt(nowMs)
    return batch === undefined ? undefined : { op: 'expire', id, now: nowMs, ...batch }
  }

  /** etcd v2 GET (a local read; throws KvError). */
  v2Get(key: string, options: V2GetOptions = {}): V2Result {
    return v2Get(this.#keyspace, key, options)
  }

  /** v3-style range (a local read). */
  range(req: RangeRequest): RangeResult {
    return range(this.#keyspace, req)
  }

  lease(id: number): LeaseInfo | undefined {
    return this.#keyspace.leases.info(id)
  }

  members(): Member[] {
    return this.#members.list()
  }

  memberPeerUrls(): ReadonlyMap<NodeId, readonly string[]> {
    return new Map(this.#members.list().map((m) => [m.id, m.peerUrls]))
  }

  /** Registers a watcher (throws KvError: 401 for a compacted revision, or a limit). */
  watch(req: WatchRequest): Watcher {
    return this.#hub.watch(req)
  }

  /**
   * What a watch on `spec` from `sinceRevision` would have reported so far: the newest matching
   * revision in [sinceRevision, revision] (0: none), and the store revision it was judged at.
   * Throws KV_EVENT_INDEX_CLEARED when `sinceRevision` is compacted, as such a watch would.
   */
  lastChange(spec: WatchSpec, sinceRevision: number): LastChange {
    const revision = this.revision
    const watched = { ...spec, key: normalizeKey(spec.key, revision) }
    const since = Math.max(1, sinceRevision)
    if (since <= revision) this.#history.checkAvailable(since, revision)
    const lastRevision = this.#history.lastMatching(since, (event) => watchMatches(watched, event))
    return { revision, lastRevision }
  }

  /** Cancels every watcher; apply and reads keep working. */
  closeWatchers(): void {
    this.#hub.close()
  }

  /** Counters for status and metrics. */
  stats(): {
    keys: number
    nodes: number
    bytes: number
    leases: number
    historyEvents: number
    watchers: number
  } {
    return {
      keys: this.#keyspace.fileCount,
      nodes: this.#keyspace.nodeCount,
      bytes: this.#keyspace.bytes,
      leases: this.#keyspace.leases.size,
      historyEvents: this.#history.eventCount,
      watchers: this.#hub.watcherCount,
    }
  }

  #run(command: Command): ApplyResult {
    const ctx = new ApplyContext(this.#keyspace, command.now)
    const revisionBefore = this.#keyspace.revision
    let result: CommandResult
    try {
      result = executeCommand(command, ctx, { members: this.#members, history: this.#history })
    } catch (error) {
      if (!(error instanceof KvError)) throw error
      if (ctx.events.length > 0 || this.#keyspace.revision !== revisionBefore) {
        throw new Error(
          `kv state machine: ${command.op} failed after changing the keyspace: ${error.message}`,
        )
      }
      return { type: 'command', id: command.id, op: command.op, ok: false, error }
    }
    if (ctx.events.length > 0) {
      this.#history.append(ctx.events)
      this.#hub.dispatch(ctx.events)
    }
    return { type: 'command', id: command.id, op: command.op, ok: true, result }
  }
}

function buildKeyspace(state: KvSnapshotState): Keyspace {
  const keyspace = new Keyspace()
  keyspace.revision = state.revision
  let nextLeaseId = state.nextLeaseId
  for (const lease of state.leases) {
    if (lease.id < 1 || keyspace.leases.get(lease.id) !== undefined) {
      throw new KvError('KV_SNAPSHOT_INVALID', `lease ${lease.id} invalid or listed twice`, 0)
    }
    keyspace.leases.grant(lease.id, lease.ttlMs, lease.deadlineMs)
    nextLeaseId = Math.max(nextLeaseId, lease.id + 1)
  }
  keyspace.leases.setNextId(Math.max(1, nextLeaseId))
  for (const node of state.nodes) keyspace.load(node)
  return keyspace
}

function checkHistory(state: KvSnapshotState): void {
  let last = state.compactedRevision
  for (const event of state.events) {
    if (
      event.revision <= state.compactedRevision ||
      event.revision < last ||
      event.revision > state.revision
    ) {
      throw new KvError('KV_SNAPSHOT_INVALID', `history event at revision ${event.revision} out of order`, 0)
    }
    last = event.revision
  }
  if (state.compactedRevision > state.revision) {
    throw new KvError('KV_SNAPSHOT_INVALID', 'history compacted past the revision', 0)
  }
}
