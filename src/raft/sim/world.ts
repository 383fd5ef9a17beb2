/**
 * The simulated cluster: nodes, network, clients, nemesis and checkers, advanced one tick at a time.
 *
 * One tick: the nemesis acts (fault phase only), clients start or time out operations, due
 * messages are delivered, every live node ticks, lossy crashes strike, every pending Ready is
 * handled, and every leader is checked. A Ready normally runs right after the event that caused it;
 * with readyDeferProbability it waits for the end of the tick, so several inputs reach the core
 * between two Readies (and a crash in between loses them).
 *
 * Every source of randomness is a fork of the run's seeded Prng; there is no clock, timer or
 * Math.random(), so a run is a pure function of (seed, scenario, planted bugs).
 *
 * Invariants: node ids are never reused; `membership` is the configuration at the highest index any
 * node has applied; after the end-of-tick flush every live core's log equals its disk's log.
 */

import { isCairnError } from '../../errors.ts'
import { bootstrapState, emptyState } from '../core/bootstrap.ts'
import { makeRaftConfig, type PlantedBug, type RaftConfig } from '../core/config.ts'
import type { Prng } from '../core/prng.ts'
import type { ConfChange, ConfState, Message, NodeId, ReadState } from '../core/types.ts'
import type { ClientWrite } from './app.ts'
import { type CheckSuite, makeCheckSuite } from './checkers/suite.ts'
import { type CrashMode, Nemesis, type NemesisHost } from './nemesis.ts'
import { type Envelope, type LossReason, SimNetwork } from './network.ts'
import { describeLinks, type Link, linkKey, type PartitionShape } from './partition.ts'
import { healedDelayShareOfElection, type Scenario } from './scenario.ts'
import { type NodeHost, SimNode } from './sim-node.ts'
import { emptyStats, type SimStats } from './stats.ts'
import { Trace } from './trace.ts'
import { type Invariant, SimViolation } from './violation.ts'
import { Workload, type WorkloadHost } from './workload.ts'

export interface WorldOptions {
  scenario: Scenario
  plantedBugs?: readonly PlantedBug[]
  disabledInvariants?: readonly Invariant[]
  traceSink?: (line: string) => void
}

export type Phase = 'faults' | 'liveness'

/** Messages held for one frozen node; past it they are lost (a real socket buffer is finite too). */
const heldMessagesMax = 4096

export class World implements NodeHost, WorkloadHost, NemesisHost {
  now = 0
  steps = 0
  phase: Phase = 'faults'
  readonly scenario: Scenario
  readonly checks: CheckSuite
  readonly trace: Trace
  readonly network: SimNetwork
  readonly workload: Workload
  readonly #stats: SimStats = emptyStats()
  readonly #nemesis: Nemesis
  readonly #nodes = new Map<NodeId, SimNode>()
  readonly #prng: Prng
  readonly #corePrng: Prng
  readonly #plantedBugs: ReadonlySet<PlantedBug>
  #membership: ConfState
  #membershipApplied = 0
  #lossyCrashes: SimNode[] = []
  readonly #held = new Map<NodeId, Envelope[]>()
  #unreachableReported = new Set<number>()

  constructor(seedPrng: Prng, options: WorldOptions) {
    this.scenario = options.scenario
    this.checks = makeCheckSuite(new Set(options.disabledInvariants ?? []))
    this.trace = new Trace(undefined, options.traceSink)
    this.network = new SimNetwork(seedPrng.fork(), this.scenario)
    this.#nemesis = new Nemesis(this.scenario, seedPrng.fork())
    this.workload = new Workload(this.scenario, seedPrng.fork())
    this.#corePrng = seedPrng.fork()
    this.#prng = seedPrng.fork()
    this.#plantedBugs = new Set(options.plantedBugs ?? [])
    const founders = Array.from({ length: this.scenario.nodeCount }, (_, i) => i + 1)
    this.#membership = { voters: founders, learners: [] }
  }

  /** Starts the founding voters from the bootstrap state (inside the run, so failures are reported). */
  startFounders(): void {
    const founders = this.#membership.voters
    for (const id of founders) this.#addNode(id, bootstrapState(founders)).start()
  }

  /** The run's counters (workload and checker counts folded in). */
  get stats(): SimStats {
    const w = this.workload.stats
    return Object.assign(this.#stats, {
      ticks: this.now,
      steps: this.steps,
      leadersElected: this.checks.election.leaderCount,
      writesAcked: w.writesAcked,
      readsAnswered: w.readsAnswered,
      opsTimedOut: w.timeouts,
      opsRefused: w.refused,
    })
  }

  get snapshotEveryEntries(): number {
    return this.scenario.snapshotEveryEntries
  }

  get startedCount(): number {
    return this.#nodes.size
  }

  get partitioned(): boolean {
    return this.network.partitioned
  }

  // ----- the tick loop --------------------------------------------------------------------------

  runTick(): void {
    this.now++
    this.#unreachableReported.clear()
    if (this.phase === 'faults') this.#nemesis.act(this)
    this.workload.tick(this)
    // A resumed process may serve a buffered client request before it reads its peers' messages
    // (etcd #20418: stale reads after a pause), so clients reach it before its held messages do.
    this.#resumePaused()
    for (const envelope of this.network.takeDue(this.now)) this.#deliver(envelope)
    this.#handleLost()
    if (this.scenario.peerDownReports) this.#reportDownPeers()
    for (const node of this.#prng.shuffled(this.#activeNodes())) {
      for (let due = node.ticksDue(); due > 0 && node.up; due--) {
        node.core.tick()
        this.#afterEvent(node)
      }
    }
    for (const node of this.#lossyCrashes) {
      if (node.up) this.#stats.crashesLossy++
      node.crash('lossy: unpersisted work since the last Ready lost')
    }
    this.#lossyCrashes = []
    this.#handleLost()
    for (const node of this.#activeNodes()) {
      node.deferReadies = false
      node.drainReady()
    }
    for (const node of this.#upNodes()) if (node.role === 'leader') node.checkLeader()
  }

  #afterEvent(node: SimNode): void {
    this.steps++
    if (!node.up || node.deferReadies || node.paused(this.now)) return
    const p = this.scenario.readyDeferProbability
    if (p > 0 && this.#prng.chance(p)) {
      this.#stats.readiesDeferred++
      return
    }
    node.drainReady()
  }

  #deliver(envelope: Envelope): void {
    const m = envelope.message
    const node = this.#nodes.get(m.to)
    if (node === undefined || !node.up) {
      this.#lost(envelope, 'blocked')
      return
    }
    if (node.paused(this.now)) {
      const held = this.#held.get(node.id) ?? []
      if (held.length >= heldMessagesMax) this.#lost(envelope, 'blocked')
      else held.push(envelope)
      this.#held.set(node.id, held)
      return
    }
    this.trace.deliver(this.now, m)
    this.#stats.messagesDelivered++
    if (m.type === 'snap') this.#stats.snapshotsDelivered++
    const refusedBefore = node.core.messagesRefused
    node.core.step(m)
    if (node.core.messagesRefused !== refusedBefore) {
      // Every sender here is a correct member: a refusal means one side's state is broken.
      throw new SimViolation(
        'peer-protocol',
        `node ${node.id} refused ${m.type} from ${m.from} as impossible`,
      )
    }
    this.#afterEvent(node)
    if (m.type === 'snap') this.#reportSnapshot(envelope, true)
  }

  #handleLost(): void {
    for (const { envelope, reason } of this.network.drainLost()) this.#lost(envelope, reason)
  }

  /** Lost snapshots are reported to their sender; blocked links as unreachable (once a tick). */
  #lost(envelope: Envelope, reason: LossReason): void {
    const m = envelope.message
    this.#stats.messagesLost++
    if (m.type === 'snap') this.#reportSnapshot(envelope, false)
    if (reason !== 'blocked') return
    const sender = this.#sender(envelope)
    const key = linkKey(m.from, m.to)
    if (sender === undefined || this.#unreachableReported.has(key)) return
    this.#unreachableReported.add(key)
    sender.core.reportUnreachable(m.to)
    this.#afterEvent(sender)
  }

  /**
   * A live member's transport redials a peer whose process is down and is refused; a partition
   * (a blocked link) times out instead, and a paused process's listener still accepts. So every
   * active member hears of every down node it may dial, every tick.
   */
  #reportDownPeers(): void {
    const down = [...this.#nodes.values()].filter((n) => !n.up)
    if (down.length === 0) return
    for (const node of this.#activeNodes()) {
      const leader = node.core.leader
      for (const peer of down) {
        if (peer.id !== node.id && !this.network.isBlocked(node.id, peer.id))
          node.core.reportPeerDown(peer.id)
      }
      if (node.core.leader === leader) continue
      this.#stats.leadersReportedDown++
      this.trace.note(this.now, node.id, `leader ${leader} reported down`)
      this.#afterEvent(node)
    }
  }

  #reportSnapshot(envelope: Envelope, ok: boolean): void {
    const sender = this.#sender(envelope)
    if (sender === undefined) return
    sender.core.reportSnapshot(envelope.message.to, ok)
    this.#afterEvent(sender)
  }

  /** The incarnation that sent the envelope, if it is still up. */
  #sender(envelope: Envelope): SimNode | undefined {
    const sender = this.#nodes.get(envelope.message.from)
    return sender?.up && sender.incarnation === envelope.senderIncarnation ? sender : undefined
  }

  // ----- the liveness phase ---------------------------------------------------------------------

  /**
   * Heals everything: no partitions, drops or duplicates, short delays (reordering stays); crashed
   * members restart; nodes outside the configuration stop.
   */
  beginLiveness(): void {
    this.phase = 'liveness'
    this.network.heal()
    const s = this.scenario
    this.network.setFaults({
      ...s,
      dropProbability: 0,
      duplicateProbability: 0,
      delayTicksMin: 0,
      delayTicksMean: Math.min(s.delayTicksMean, s.electionTicks * healedDelayShareOfElection),
    })
    this.#lossyCrashes = []
    for (const node of this.nodes()) {
      node.tearNextReady = undefined
      node.deferReadies = false
      node.pausedUntil = 0 // held messages are delivered at the next tick
      if (!this.#isMember(node.id)) node.decommission()
      else if (!node.up) this.restart(node)
    }
    this.workload.startFinalPhase()
    this.trace.note(this.now, 0, 'heal everything: liveness phase')
  }

  /** Undefined once the healed cluster has a leader, finished client work and converged. */
  livenessProblem(): string | undefined {
    const leader = this.leader()
    if (leader === undefined) return 'no leader'
    const ls = leader.core.status()
    if (ls.role !== 'leader') return `node ${leader.id} lost leadership`
    const members = this.#liveMembers()
    const higher = members.find((n) => n.core.status().term > ls.term)
    if (higher !== undefined) return `node ${higher.id} is at a term above leader ${leader.id}'s ${ls.term}`
    if (!this.workload.done) return this.workload.describe()
    if (ls.commit !== ls.lastIndex)
      return `leader ${leader.id} has entries up to ${ls.lastIndex}, commit ${ls.commit}`
    for (const node of members) {
      const applied = node.core.status().applied
      if (applied !== ls.commit)
        return `node ${node.id} applied ${applied}, leader ${leader.id} commit ${ls.commit}`
    }
    return undefined
  }

  /** Changes whenever a live member applies more, or membership changes (progress in the liveness phase). */
  progressMark(): number {
    let mark = this.#membershipApplied
    for (const node of this.#liveMembers()) mark += node.app.applied
    return mark
  }

  /** End of a converged run: every live member holds every acknowledged write. */
  finalChecks(): void {
    for (const node of this.#liveMembers()) this.checks.apply.converged(node.id, node.app.applied)
  }

  // ----- NodeHost -------------------------------------------------------------------------------

  send(from: SimNode, m: Message): void {
    this.network.send(m, this.now, from.incarnation)
  }

  writeApplied(node: SimNode, write: ClientWrite, index: number, chain: number): void {
    this.workload.writeApplied(node, write, index, chain, this)
  }

  readAnswered(node: SimNode, rs: ReadState, appliedIndex: number): void {
    this.workload.readAnswered(node, rs, appliedIndex, this)
  }

  membershipApplied(node: SimNode): void {
    const status = node.core.status()
    if (status.applied <= this.#membershipApplied) return
    this.#membershipApplied = status.applied
    this.#countMembershipChanges(this.#membership, status.confState)
    this.#membership = status.confState
  }

  #countMembershipChanges(before: ConfState, after: ConfState): void {
    for (const id of after.learners) if (!before.learners.includes(id)) this.#stats.learnersAdded++
    for (const id of after.voters) if (before.learners.includes(id)) this.#stats.learnersPromoted++
    for (const id of before.voters) if (!after.voters.includes(id)) this.#stats.votersRemoved++
  }

  stepped(): void {
    this.steps++
  }

  // ----- WorkloadHost and NemesisHost -----------------------------------------------------------

  clientTargets(): SimNode[] {
    return this.#activeNodes() // a client cannot reach a frozen process
  }

  pause(node: SimNode, ticks: number): void {
    node.pausedUntil = this.now + ticks
    this.#stats.pauses++
    this.trace.note(this.now, node.id, `pause for ${ticks} ticks`)
  }

  /** Resumed nodes get the messages held for them, in arrival order; crashed ones lose them. */
  #resumePaused(): void {
    for (const [id, held] of this.#held) {
      const node = this.#nodes.get(id)
      if (node?.up && node.paused(this.now)) continue
      this.#held.delete(id)
      if (node?.up) this.trace.note(this.now, id, `resume with ${held.length} held messages`)
      for (const envelope of held) this.#deliver(envelope)
    }
  }

  clientCalled(node: SimNode): void {
    this.#afterEvent(node)
  }

  nodes(): SimNode[] {
    return [...this.#nodes.values()].filter((n) => n.state !== 'decommissioned')
  }

  /** The live node that last reported itself leader in the highest term. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined
    for (const node of this.#upNodes()) {
      if (node.role !== 'leader') continue
      if (best === undefined || node.disk.hardState.term > best.disk.hardState.term) best = node
    }
    return best
  }

  membership(): ConfState {
    return this.#membership
  }

  crash(node: SimNode, mode: CrashMode): void {
    if (mode === 'clean') {
      node.crash('clean')
      this.#stats.crashesClean++
    } else if (mode === 'torn') {
      node.tearNextReady = this.#prng.float()
      this.trace.note(this.now, node.id, 'will crash in the middle of its next Ready')
    } else {
      node.deferReadies = true
      this.#lossyCrashes.push(node)
    }
  }

  restart(node: SimNode): void {
    this.#stats.restarts++
    node.start()
    this.#afterEvent(node)
  }

  partition(shape: PartitionShape, links: Link[]): void {
    this.network.block(links)
    this.#stats.partitions++
    this.trace.note(this.now, 0, `partition ${shape}: ${describeLinks(links)}`)
  }

  heal(): void {
    this.network.heal()
    this.trace.note(this.now, 0, 'partition healed')
  }

  startNewNode(): SimNode {
    const id = Math.max(...this.#nodes.keys()) + 1
    const node = this.#addNode(id, emptyState())
    node.start()
    return node
  }

  proposeConfChange(node: SimNode, change: ConfChange): void {
    this.#refusable(node, `propose ${change.type} ${change.nodeId}`, () =>
      node.core.proposeConfChange(change),
    )
  }

  transferLeadership(node: SimNode, to: NodeId): void {
    this.#stats.transfersAsked++
    this.#refusable(node, `transfer leadership to ${to}`, () => node.core.transferLeadership(to))
  }

  // ----- helpers --------------------------------------------------------------------------------

  #refusable(node: SimNode, what: string, call: () => void): void {
    try {
      call()
      this.trace.note(this.now, node.id, what)
    } catch (error) {
      if (!isCairnError(error)) throw error
      this.trace.note(this.now, node.id, `${what}: refused ${error.code}`)
    }
    this.#afterEvent(node)
  }

  #addNode(id: NodeId, initial: ReturnType<typeof emptyState>): SimNode {
    const node = new SimNode(
      id,
      initial,
      this,
      (nodeId) => this.#config(nodeId),
      this.scenario.storageLosesLastEntry,
    )
    const skew = this.scenario.clockSkew
    node.clockRate = 1 - skew + 2 * skew * this.#prng.float()
    this.#nodes.set(id, node)
    return node
  }

  #config(id: NodeId): RaftConfig {
    const s = this.scenario
    return makeRaftConfig({
      id,
      prng: this.#corePrng.fork(),
      electionTicks: s.electionTicks,
      heartbeatTicks: s.heartbeatTicks,
      preVote: s.preVote,
      checkQuorum: s.checkQuorum,
      appendBytesMax: s.appendBytesMax,
      inflightMsgsMax: s.inflightMsgsMax,
      uncommittedBytesMax: s.uncommittedBytesMax,
      readsPendingMax: s.readsPendingMax,
      snapshotRetainedEntries: s.snapshotRetainedEntries,
      learnerLagEntriesMax: s.learnerLagEntriesMax,
      plantedBugs: this.#plantedBugs,
    })
  }

  /** Up and not frozen. */
  #activeNodes(): SimNode[] {
    return this.#upNodes().filter((n) => !n.paused(this.now))
  }

  #upNodes(): SimNode[] {
    const out: SimNode[] = []
    for (const node of this.#nodes.values()) if (node.up) out.push(node)
    return out
  }

  #isMember(id: NodeId): boolean {
    return this.#membership.voters.includes(id) || this.#membership.learners.includes(id)
  }

  #liveMembers(): SimNode[] {
    return this.#upNodes().filter((n) => this.#isMember(n.id))
  }
}
