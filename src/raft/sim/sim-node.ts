/**
 * One simulated server: a RaftCore, its disk, its application state and the Ready loop that ties
 * them together (the same contract the real driver follows).
 *
 * Ready cycle: persist (snapshot, entries, hard state) -> send -> apply (snapshot, committed
 * entries, held reads) -> advance -> maybe snapshot the application and compact. A torn cycle
 * persists a prefix of the steps, sends only what a leader sends before persisting
 * (isSafeBeforePersist), and crashes the node.
 *
 * Invariants:
 *   while up, the disk holds everything the core handed out in finished Readies, and after every
 *   finished cycle the core's log equals the disk's log;
 *   app.applied === the core's applied index after every finished cycle;
 *   a down node has no core and no app; only its disk survives;
 *   a decommissioned node never comes back.
 */
import type { RaftConfig } from '../core/config.ts'
import { isSafeBeforePersist } from '../core/early-send.ts'
import { RaftCore } from '../core/raft.ts'
import type { Entry, Message, NodeId, PersistedState, ReadState, Ready, Role } from '../core/types.ts'
import { snapshotBytes } from '../core/types.ts'
import { type ClientWrite, KvApp } from './app.ts'
import { checkCoreRecovered, checkRecovered } from './checkers/durability.ts'
import type { CheckSuite } from './checkers/suite.ts'
import { type PersistStep, persistSteps, SimDisk } from './disk.ts'
import type { SimStats } from './stats.ts'
import type { Trace } from './trace.ts'
import { SimViolation } from './violation.ts'

/** What a node needs from the world around it. */
export interface NodeHost {
  readonly now: number
  readonly checks: CheckSuite
  readonly trace: Trace
  readonly stats: SimStats
  /** Applied entries between application snapshots. */
  readonly snapshotEveryEntries: number
  send(from: SimNode, m: Message): void
  writeApplied(node: SimNode, write: ClientWrite, index: number, chain: number): void
  readAnswered(node: SimNode, rs: ReadState, appliedIndex: number): void
  /** The node applied membership changes (or a snapshot); its status is fresh. */
  membershipApplied(node: SimNode): void
  /** Counts one Ready cycle as a simulation step. */
  stepped(): void
}

export type NodeState = 'up' | 'down' | 'decommissioned'

export class SimNode {
  readonly id: NodeId
  readonly disk: SimDisk
  readonly #host: NodeHost
  readonly #config: (id: NodeId) => RaftConfig
  state: NodeState = 'down'
  /** Counts starts; messages and reports carry it so that old ones do not reach a new incarnation. */
  incarnation = 0
  #core: RaftCore | undefined
  #app: KvApp | undefined
  /** Role from the latest finished Ready (the core may have moved on since). */
  role: Role = 'follower'
  #heldReads: ReadState[] = []
  /**
   * Set by the nemesis: the next Ready with something to persist keeps a prefix of its steps (see
   * tornPrefix), then the node crashes.
   */
  tearNextReady: number | undefined
  /** Set by the nemesis: Readies wait for the end of the tick (so a crash loses them). */
  deferReadies = false
  /** This node's clock rate, in core ticks per simulated tick (clock skew). */
  clockRate = 1
  /** Core ticks owed so far: clockRate accumulated since the node was created. */
  #clock = 0

  constructor(
    id: NodeId,
    initial: PersistedState,
    host: NodeHost,
    config: (id: NodeId) => RaftConfig,
    losesLastEntry: boolean,
  ) {
    this.id = id
    this.disk = new SimDisk(initial, losesLastEntry)
    this.#host = host
    this.#config = config
    host.checks.log.start(id, initial)
  }

  get up(): boolean {
    return this.state === 'up'
  }

  /** The running core; only call while up. */
  get core(): RaftCore {
    if (this.#core === undefined) throw new Error(`SimNode ${this.id}: core used while ${this.state}`)
    return this.#core
  }

  get app(): KvApp {
    if (this.#app === undefined) throw new Error(`SimNode ${this.id}: app used while ${this.state}`)
    return this.#app
  }

  /** Starts (or restarts) from the disk: the core from what was persisted, the app from the snapshot. */
  start(): void {
    if (this.state !== 'down') throw new Error(`SimNode ${this.id}: start while ${this.state}`)
    const { checks } = this.#host
    const loaded = this.disk.load(this.incarnation > 0)
    if (this.incarnation > 0) {
      checkRecovered(this.id, checks.log.shadow(this.id), loaded, checks.fail)
      checks.log.start(this.id, loaded) // in step with the disk again, even if the check is disabled
    }
    const snapshot = loaded.snapshot
    this.#app = snapshot === undefined ? new KvApp() : KvApp.fromSnapshot(snapshotBytes(snapshot.data))
    if (snapshot !== undefined) {
      if (this.#app.applied !== snapshot.meta.index) {
        throw new SimViolation(
          'ready-contract',
          `node ${this.id} snapshot ${snapshot.meta.index} holds app state ${this.#app.applied}`,
        )
      }
      checks.apply.restored(this.id, snapshot.meta.index, this.#app.chain, 0)
    }
    this.#core = new RaftCore(this.#config(this.id), loaded, snapshot?.meta.index)
    this.incarnation++
    this.state = 'up'
    this.role = 'follower'
    this.#heldReads = []
    this.tearNextReady = undefined
    this.deferReadies = false
    checkCoreRecovered(this.id, loaded, this.#core.status(), checks.fail)
    this.#host.trace.note(
      this.#host.now,
      this.id,
      `start #${this.incarnation} (term ${loaded.hardState.term}, last ${loaded.logStart.index + loaded.entries.length})`,
    )
  }

  /** Loses everything but the disk. */
  /** Frozen (a GC or SIGSTOP pause) until this tick: no ticks, no Readies, messages held. */
  pausedUntil = 0

  paused(now: number): boolean {
    return this.state === 'up' && now < this.pausedUntil
  }

  crash(why: string): void {
    if (this.state !== 'up') return
    this.state = 'down'
    this.pausedUntil = 0
    this.#core = undefined
    this.#app = undefined
    this.#heldReads = []
    this.tearNextReady = undefined
    this.deferReadies = false
    this.#host.trace.note(this.#host.now, this.id, `crash (${why})`)
  }

  /** How many times to tick the core this simulated tick, following this node's clock rate. */
  ticksDue(): number {
    const before = Math.floor(this.#clock)
    this.#clock += this.clockRate
    return Math.floor(this.#clock) - before
  }

  /** Stops the node for good (it was removed from the cluster). */
  decommission(): void {
    this.crash('decommissioned')
    this.state = 'decommissioned'
  }

  /** Runs Ready cycles until the core has nothing more, unless a torn cycle crashes the node. */
  drainReady(): void {
    while (this.up && this.core.hasReady()) this.#cycle()
  }

  #cycle(): void {
    const core = this.core
    const rd = core.ready()
    const { checks, trace, now } = this.#host
    trace.ready(now, this.id, rd)
    const steps = persistSteps(rd)
    // As the production driver does, a leader sends its replication messages before persisting.
    const leader = core.role === 'leader' ? { id: this.id, term: core.term } : undefined
    const early = leader === undefined ? [] : rd.messages.filter((m) => isSafeBeforePersist(m, leader))
    const late = early.length === 0 ? rd.messages : rd.messages.filter((m) => !early.includes(m))
    for (const m of early) this.#sendMessage(m)
    if (this.tearNextReady !== undefined && steps.length > 0) {
      const kept = tornPrefix(this.tearNextReady, steps.length)
      for (const step of steps.slice(0, kept)) this.#persist(step)
      this.#host.stats.crashesTorn++
      if (kept > 0 && kept < steps.length) this.#host.stats.tornWritesPartial++
      this.crash(
        `torn Ready: ${kept} of ${steps.length} persistence steps done, only a leader's early messages sent`,
      )
      return
    }
    for (const step of steps) this.#persist(step)
    if (rd.hardState !== undefined || rd.snapshot !== undefined)
      checks.log.commit(this.id, this.disk.hardState)
    for (const m of late) this.#sendMessage(m)
    const membershipChanged = this.#apply(rd)
    core.advance(rd)
    this.#host.stepped()
    if (rd.softState !== undefined) this.role = rd.softState.role
    if (this.role === 'leader') this.checkLeader()
    if (membershipChanged) this.#host.membershipApplied(this)
    this.#maybeCompact()
    if (rd.committedEntries.some((e) => e.change?.type === 'removeNode' && e.change.nodeId === this.id)) {
      if (rd.softState?.role === 'leader' || this.role === 'leader') this.#host.stats.leadersRemoved++
      this.decommission() // it applied its own removal: the operator stops it
    }
  }

  #sendMessage(m: Message): void {
    freezeMessage(m)
    this.#host.checks.election.sent(m, this.disk.hardState)
    this.#host.send(this, m)
  }

  /** Leader checks; only valid right after a finished cycle (core log === disk log). */
  checkLeader(): void {
    const term = this.disk.hardState.term
    this.#host.checks.election.leader(term, this.id, 'ready')
    this.#host.checks.log.checkLeader(this.id, term)
  }

  #persist(step: PersistStep): void {
    const { checks } = this.#host
    const before = this.disk.hardState
    if (step.kind === 'entry') Object.freeze(step.entry)
    this.disk.persist(step)
    checks.log.persist(this.id, step)
    if (step.kind === 'hardState') checks.election.persisted(this.id, before, step.hardState)
  }

  /** Applies the snapshot and committed entries of rd; answers held reads. Returns whether membership may have changed. */
  #apply(rd: Ready): boolean {
    const { checks } = this.#host
    let membershipChanged = false
    if (rd.snapshot !== undefined) {
      const before = this.app.applied
      this.#app = KvApp.fromSnapshot(snapshotBytes(rd.snapshot.data))
      if (this.#app.applied !== rd.snapshot.meta.index) {
        throw new SimViolation(
          'ready-contract',
          `node ${this.id} snapshot ${rd.snapshot.meta.index} holds app state ${this.#app.applied}`,
        )
      }
      checks.apply.restored(this.id, rd.snapshot.meta.index, this.#app.chain, before)
      membershipChanged = true
    }
    const app = this.app
    for (const entry of rd.committedEntries) {
      const write = app.apply(entry)
      checks.apply.applied(this.id, entry.index, app.chain)
      if (write !== undefined) this.#host.writeApplied(this, write, entry.index, app.chain)
      if (entry.type === 'conf') membershipChanged = true
    }
    for (const rs of rd.readStates) this.#heldReads.push(rs)
    this.#answerReads()
    return membershipChanged
  }

  #answerReads(): void {
    if (this.#heldReads.length === 0) return
    const applied = this.app.applied
    const waiting: ReadState[] = []
    for (const rs of this.#heldReads) {
      if (rs.index <= applied) this.#host.readAnswered(this, rs, applied)
      else waiting.push(rs)
    }
    this.#heldReads = waiting
  }

  #maybeCompact(): void {
    const applied = this.app.applied
    const snapshotIndex = this.disk.snapshot?.meta.index ?? 0
    if (applied - snapshotIndex < this.#host.snapshotEveryEntries) return
    const coreApplied = this.core.status().applied
    if (coreApplied !== applied) {
      throw new SimViolation(
        'ready-contract',
        `node ${this.id} core applied ${coreApplied}, app applied ${applied}`,
      )
    }
    const compaction = this.core.compact(applied, this.app.encodeSnapshot())
    Object.freeze(compaction.snapshot)
    this.disk.persistCompaction(compaction)
    this.#host.checks.log.compacted(this.id, this.disk.logStart.index, compaction.snapshot.meta.index)
    this.#host.stats.compactions++
    this.#host.trace.note(
      this.#host.now,
      this.id,
      `snapshot at ${applied}, log starts at ${this.disk.logStart.index}`,
    )
  }
}

/**
 * How many of a Ready's persistence steps a torn write keeps, from a uniform draw in [0, 1): with
 * two or more steps, at least one is kept and at least one lost; with one, kept or lost evenly.
 */
export function tornPrefix(draw: number, steps: number): number {
  return steps === 1 ? Math.floor(draw * 2) : 1 + Math.floor(draw * (steps - 1))
}

/** Messages and the entries they carry are immutable once sent (the core shares them with its log). */
function freezeMessage(m: Message): void {
  Object.freeze(m)
  if (m.type === 'app' || m.type === 'prop') {
    Object.freeze(m.entries)
    for (const entry of m.entries as Entry[]) Object.freeze(entry)
  } else if (m.type === 'snap') {
    Object.freeze(m.snapshot)
  }
}
