/**
 * A synchronous in-memory cluster of RaftCores for unit tests and the core benchmark.
 *
 * Each node follows the Ready contract exactly: persist to its disk, send, apply, advance. Messages
 * are delivered in send order until the cluster is quiet; the network can drop links (`cut`,
 * `isolate`), drop message types (`ignore`) or any messages matching a predicate (`drop`), and heal.
 * Crash keeps only the disk. No time passes except through tick(), so tests need no sleeps.
 *
 * Below the cluster are helpers for driving one RaftCore by hand (`makeCore`, `drain`, `electAlone`),
 * for tests that build every message themselves.
 *
 * Invariant: a node's disk holds exactly what its Readies told it to persist, in order.
 */
import { CairnError, type ErrorCode } from '../../errors.ts'
import { bootstrapState } from './bootstrap.ts'
import { makeRaftConfig, type RaftConfig } from './config.ts'
import { Prng } from './prng.ts'
import { RaftCore } from './raft.ts'
import type {
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  PersistedState,
  ReadState,
  Ready,
  Snapshot,
} from './types.ts'

export interface TestNode {
  core: RaftCore
  disk: PersistedState
  applied: Entry[]
  readStates: ReadState[]
  snapshotsApplied: Snapshot[]
  up: boolean
}

/** Iterations of delivery in process() before it is declared livelocked. */
const processRoundsMax = 10_000

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>()
  readonly #prng: Prng
  readonly #overrides: Partial<RaftConfig>
  #cut = new Set<string>()
  #ignored = new Set<MessageType>()
  #dropped: ((m: Message) => boolean)[] = []
  #inFlight: Message[] = []
  /** Every message ever delivered, for tests that inspect traffic. */
  delivered: Message[] = []
  recordDelivered = false
  /** Every message taken from a Ready, whether or not the network then drops it. */
  sent: Message[] = []
  recordSent = false

  constructor(ids: NodeId[], overrides: Partial<RaftConfig> = {}, seed = 1) {
    this.#prng = new Prng(seed)
    this.#overrides = overrides
    for (const id of ids) this.#start(id, bootstrapState(ids))
    this.process()
  }

  core(id: NodeId): RaftCore {
    return this.#node(id).core
  }

  node(id: NodeId): TestNode {
    return this.#node(id)
  }

  /** Starts a node that is not yet a member (it waits for the leader to contact it). */
  addNode(id: NodeId, state: PersistedState): void {
    this.#start(id, state)
  }

  leader(): NodeId | undefined {
    const leaders = [...this.nodes.entries()].filter(([, n]) => n.up && n.core.status().role === 'leader')
    return leaders.length === 0
      ? undefined
      : leaders.sort((a, b) => b[1].core.status().term - a[1].core.status().term)[0]?.[0]
  }

  /** Makes `id` campaign and runs the cluster until quiet. */
  elect(id: NodeId): void {
    this.core(id).campaign()
    this.process()
  }

  tick(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const node of this.nodes.values()) if (node.up) node.core.tick()
      this.process()
    }
  }

  /** Drops every message from `a` to `b` and from `b` to `a`. */
  cut(a: NodeId, b: NodeId): void {
    this.#cut.add(`${a}>${b}`)
    this.#cut.add(`${b}>${a}`)
  }

  /** Drops messages from `from` to `to` only. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}>${to}`)
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other)
  }

  ignore(type: MessageType): void {
    this.#ignored.add(type)
  }

  /** Drops every message for which `predicate` holds, until heal(). */
  drop(predicate: (m: Message) => boolean): void {
    this.#dropped.push(predicate)
  }

  heal(): void {
    this.#cut.clear()
    this.#ignored.clear()
    this.#dropped = []
  }

  /**
   * The application on `id` takes a snapshot at its applied index: the core compacts its log and
   * the node's disk records the snapshot and the new compaction point.
   */
  compact(id: NodeId, data: Uint8Array = new Uint8Array(0)): Snapshot {
    const node = this.#node(id)
    const result = node.core.compact(node.core.status().applied, data)
    persistCompaction(node.disk, result)
    return result.snapshot
  }

  crash(id: NodeId): void {
    const node = this.#node(id)
    node.up = false
  }

  restart(id: NodeId): void {
    const node = this.#node(id)
    const disk = structuredClone(node.disk)
    node.core = new RaftCore(this.#config(id), disk)
    node.up = true
    node.applied = node.applied.filter((e) => e.index <= (disk.snapshot?.meta.index ?? disk.logStart.index))
    this.process()
  }

  /** Handles every Ready and delivers every message until nothing is left to do. */
  process(): void {
    for (let round = 0; round < processRoundsMax; round++) {
      let busy = false
      for (const node of this.nodes.values()) {
        if (node.up && node.core.hasReady()) {
          this.#handleReady(node, node.core.ready())
          busy = true
        }
      }
      const batch = this.#inFlight
      this.#inFlight = []
      for (const m of batch) {
        busy = true
        this.#deliver(m)
      }
      if (!busy) return
    }
    throw new Error('TestCluster.process: cluster did not quiesce')
  }

  #handleReady(node: TestNode, rd: Ready): void {
    persist(node.disk, rd)
    for (const m of rd.messages) this.#inFlight.push(m)
    if (this.recordSent) for (const m of rd.messages) this.sent.push(m)
    if (rd.snapshot !== undefined) {
      node.snapshotsApplied.push(rd.snapshot)
      node.applied = []
    }
    for (const entry of rd.committedEntries) node.applied.push(entry)
    for (const rs of rd.readStates) node.readStates.push(rs)
    node.core.advance(rd)
  }

  #deliver(m: Message): void {
    if (this.#ignored.size > 0 && this.#ignored.has(m.type)) return
    if (this.#cut.size > 0 && this.#cut.has(`${m.from}>${m.to}`)) return
    if (this.#dropped.length > 0 && this.#dropped.some((drop) => drop(m))) return
    const target = this.nodes.get(m.to)
    if (target === undefined || !target.up) return
    if (this.recordDelivered) this.delivered.push(m)
    target.core.step(m)
  }

  #start(id: NodeId, state: PersistedState): void {
    const disk = structuredClone(state)
    const node: TestNode = {
      core: new RaftCore(this.#config(id), structuredClone(disk)),
      disk,
      applied: [],
      readStates: [],
      snapshotsApplied: [],
      up: true,
    }
    this.nodes.set(id, node)
  }

  #config(id: NodeId): RaftConfig {
    return makeRaftConfig({ id, prng: this.#prng.fork(), ...this.#overrides })
  }

  #node(id: NodeId): TestNode {
    const node = this.nodes.get(id)
    if (node === undefined) throw new Error(`TestCluster: no node ${id}`)
    return node
  }
}

/** Applies the persistence step of the Ready contract to an in-memory disk. */
export function persist(disk: PersistedState, rd: Ready): void {
  if (rd.snapshot !== undefined) {
    disk.snapshot = rd.snapshot
    disk.logStart = { index: rd.snapshot.meta.index, term: rd.snapshot.meta.term }
    disk.entries = []
  }
  const first = rd.entries[0]
  if (first !== undefined) {
    disk.entries.length = Math.max(0, first.index - disk.logStart.index - 1)
    for (const entry of rd.entries) disk.entries.push(entry)
  }
  if (rd.hardState !== undefined) disk.hardState = { ...rd.hardState }
}

/** Persists an application snapshot handed to RaftCore.compact(). */
export function persistCompaction(
  disk: PersistedState,
  result: { snapshot: Snapshot; logStart: { index: number; term: number } },
): void {
  disk.snapshot = result.snapshot
  const drop = result.logStart.index - disk.logStart.index
  if (drop > 0) disk.entries = disk.entries.slice(drop)
  disk.logStart = { ...result.logStart }
}

// -------------------------------------------------------------------------------------------------
// Driving one core by hand
// -------------------------------------------------------------------------------------------------

/**
 * A founder's persisted state: the bootstrap entries for `voters` (term 1), then one empty normal
 * entry per element of `tailTerms`, with that term. The hard state defaults to the last entry's
 * term, no vote, and the bootstrap entries committed.
 */
export function bootstrapStateWithTail(
  voters: readonly NodeId[],
  tailTerms: readonly number[],
  hardState: Partial<HardState> = {},
): PersistedState {
  const state = bootstrapState(voters)
  for (const term of tailTerms) {
    state.entries.push({ index: state.entries.length + 1, term, type: 'normal', data: new Uint8Array(0) })
  }
  const lastTerm = state.entries[state.entries.length - 1]?.term ?? 1
  state.hardState = { term: lastTerm, vote: 0, commit: voters.length, ...hardState }
  return state
}

/** Readies handled in one drain() before it is declared livelocked. */
const drainReadiesMax = 1_000

/**
 * A lone core with a fixed seed, its bootstrap Ready already handled (so it knows its membership).
 * Messages it sends go nowhere unless the test steps them into another core.
 */
export function makeCore(
  id: NodeId,
  state: PersistedState = bootstrapState([1, 2, 3]),
  overrides: Partial<RaftConfig> = {},
): RaftCore {
  const core = new RaftCore(makeRaftConfig({ id, prng: new Prng(id), ...overrides }), structuredClone(state))
  drain(core)
  return core
}

/**
 * Handles Readies (persisting, sending and applying are the caller's business) until the core has
 * none left; returns them in order.
 */
export function drain(core: RaftCore): Ready[] {
  const readies: Ready[] = []
  while (core.hasReady()) {
    if (readies.length >= drainReadiesMax) throw new Error('drain: core never ran out of Readies')
    const rd = core.ready()
    readies.push(rd)
    core.advance(rd)
  }
  return readies
}

/** The messages of every Ready drain() handled. */
export function drainMessages(core: RaftCore): Message[] {
  return drain(core).flatMap((rd) => rd.messages)
}

/**
 * Makes a lone core leader: it campaigns and each of `supporters` grants its (pre)vote. Returns the
 * messages the new leader sent (its first appends).
 */
export function electAlone(core: RaftCore, supporters: readonly NodeId[]): Message[] {
  core.campaign()
  for (let round = 0; round < 2 && core.status().role !== 'leader'; round++) {
    for (const m of drainMessages(core)) {
      if ((m.type !== 'preVote' && m.type !== 'vote') || !supporters.includes(m.to)) continue
      const type = m.type === 'preVote' ? 'preVoteResp' : 'voteResp'
      core.step({ type, from: m.to, to: core.id, term: m.term, reject: false })
    }
  }
  if (core.status().role !== 'leader') throw new Error(`electAlone: ${core.id} did not win`)
  return drainMessages(core)
}

/** The CairnError code `fn` throws, or undefined if it returns. Other errors propagate. */
export function errorCode(fn: () => void): ErrorCode | undefined {
  try {
    fn()
  } catch (error) {
    if (error instanceof CairnError) return error.code
    throw error
  }
  return undefined
}

/**
 * Rows for it.each with each row's full title first: `it.each(titled(cases, (c) => ...))('%s', (_, c) => ...)`.
 * (vitest's `$field` titles quote strings and cut them at 40 characters.)
 */
export function titled<T>(cases: readonly T[], title: (c: T) => string): [string, T][] {
  return cases.map((c) => [title(c), c])
}
