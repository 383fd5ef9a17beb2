/**
 * The fault and churn schedule of the fault phase: partitions of several shapes (held, then
 * healed, then a stable period), crashes (clean, torn mid-Ready, or losing deferred work) with
 * restarts after a while, membership changes (add a learner, promote it once caught up, remove a
 * voter, possibly the leader) and leadership transfers. Every decision is drawn from its own Prng.
 *
 * Invariants: at most floor((voters - 1) / 2) voters are down at once (the crash budget), so a
 * quorum can always form once partitions heal; the cluster keeps at least 3 voters; at most one
 * learner is being added at a time; no more than nodesMax nodes are ever started.
 */
import type { Prng } from '../core/prng.ts'
import type { ConfChange, ConfState } from '../core/types.ts'
import { drawPartition, type Link, type PartitionShape } from './partition.ts'
import type { Scenario } from './scenario.ts'
import type { SimNode } from './sim-node.ts'

export type CrashMode = 'clean' | 'torn' | 'lossy'

export interface NemesisHost {
  readonly now: number
  /** Every started node that is not decommissioned, up or down. */
  nodes(): SimNode[]
  /** Nodes ever started (founders included). */
  readonly startedCount: number
  leader(): SimNode | undefined
  membership(): ConfState
  readonly partitioned: boolean
  crash(node: SimNode, mode: CrashMode): void
  /** Freezes an up node for `ticks` ticks (see SimNode.pausedUntil). */
  pause(node: SimNode, ticks: number): void
  restart(node: SimNode): void
  partition(shape: PartitionShape, links: Link[]): void
  heal(): void
  /** Creates and starts a node with an empty disk; it waits to be added. */
  startNewNode(): SimNode
  proposeConfChange(node: SimNode, change: ConfChange): void
  transferLeadership(node: SimNode, to: number): void
}

/** Voters the cluster keeps at least. */
const votersMin = 3

export class Nemesis {
  readonly #scenario: Scenario
  readonly #prng: Prng
  readonly #restartAt = new Map<number, number>()
  #partitionUntil = 0
  #stableUntil = 0
  /** The node being added: first as learner, then promoted. */
  #joining: number | undefined

  constructor(scenario: Scenario, prng: Prng) {
    this.#scenario = scenario
    this.#prng = prng
  }

  act(host: NemesisHost): void {
    this.#partitions(host)
    this.#restarts(host)
    if (this.#prng.chance(this.#scenario.crashProbability)) this.#crashOne(host)
    if (this.#prng.chance(this.#scenario.pauseProbability)) this.#pauseOne(host)
    if (this.#prng.chance(this.#scenario.membershipProbability)) this.#membershipStep(host)
    if (this.#prng.chance(this.#scenario.transferProbability)) this.#transfer(host)
  }

  #partitions(host: NemesisHost): void {
    const s = this.#scenario
    if (host.partitioned) {
      if (host.now < this.#partitionUntil) return
      host.heal()
      this.#stableUntil = host.now + s.partitionStableTicks
      return
    }
    if (host.now < this.#stableUntil || !this.#prng.chance(s.partitionProbability)) return
    const shape = this.#prng.pick(s.partitionShapes)
    const ids = host.nodes().map((n) => n.id)
    const links = drawPartition(shape, ids, host.leader()?.id ?? 0, this.#prng)
    if (links.length === 0) return
    host.partition(shape, links)
    this.#partitionUntil = host.now + this.#prng.int(s.partitionTicksMin, s.partitionTicksMax + 1)
  }

  #restarts(host: NemesisHost): void {
    const s = this.#scenario
    for (const node of host.nodes()) {
      if (node.up) {
        this.#restartAt.delete(node.id)
        continue
      }
      const at = this.#restartAt.get(node.id)
      if (at === undefined) {
        this.#restartAt.set(node.id, host.now + this.#prng.int(s.restartTicksMin, s.restartTicksMax + 1))
      } else if (host.now >= at) {
        this.#restartAt.delete(node.id)
        host.restart(node)
      }
    }
  }

  /** Pauses count against the crash budget: a frozen voter is as unavailable as a crashed one. */
  #pauseOne(host: NemesisHost): void {
    const voters = host.membership().voters
    const nodes = host.nodes()
    const unavailable = nodes.filter((n) => (!n.up || n.paused(host.now)) && voters.includes(n.id)).length
    const budget = Math.floor((voters.length - 1) / 2)
    const candidates = nodes.filter(
      (n) => n.up && !n.paused(host.now) && (!voters.includes(n.id) || unavailable < budget),
    )
    if (candidates.length === 0) return
    const node = this.#prng.pick(candidates)
    host.pause(node, this.#prng.int(1, this.#scenario.electionTicks * 4))
  }

  #crashOne(host: NemesisHost): void {
    const voters = host.membership().voters
    const nodes = host.nodes()
    const downVoters = nodes.filter((n) => (!n.up || n.paused(host.now)) && voters.includes(n.id)).length
    const budget = Math.floor((voters.length - 1) / 2)
    const candidates = nodes.filter((n) => n.up && (!voters.includes(n.id) || downVoters < budget))
    if (candidates.length === 0) return
    const node = this.#prng.pick(candidates)
    const r = this.#prng.float()
    const s = this.#scenario
    const mode: CrashMode =
      r < s.tornWriteProbability
        ? 'torn'
        : r < s.tornWriteProbability + s.lossyCrashProbability
          ? 'lossy'
          : 'clean'
    host.crash(node, mode)
  }

  #membershipStep(host: NemesisHost): void {
    const leader = host.leader()
    if (leader === undefined) return
    const conf = host.membership()
    const joining = this.#joining
    if (joining !== undefined) {
      if (conf.voters.includes(joining)) {
        this.#joining = undefined
        return
      }
      const type = conf.learners.includes(joining) ? 'addVoter' : 'addLearner'
      host.proposeConfChange(leader, { type, nodeId: joining })
      return
    }
    const canRemove = conf.voters.length > votersMin
    const canAdd = host.startedCount < this.#scenario.nodesMax
    if (canRemove && (!canAdd || this.#prng.chance(0.5))) {
      host.proposeConfChange(leader, { type: 'removeNode', nodeId: this.#prng.pick(conf.voters) })
    } else if (canAdd) {
      const node = host.startNewNode()
      this.#joining = node.id
      host.proposeConfChange(leader, { type: 'addLearner', nodeId: node.id })
    }
  }

  #transfer(host: NemesisHost): void {
    const leader = host.leader()
    if (leader === undefined) return
    const others = host.membership().voters.filter((id) => id !== leader.id)
    if (others.length === 0) return
    host.transferLeadership(leader, this.#prng.pick(others))
  }
}
