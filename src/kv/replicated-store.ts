/**
 * ReplicatedStore: the kv state machine behind a Raft node, as one object the API and the agent
 * use. It stamps commands (request id and the proposer's clock), proposes them, and gives back the
 * state machine's answer; it offers linearizable read barriers; and while this member leads, it
 * proposes the expiry of TTL keys and leases whose deadlines have passed.
 *
 * Invariants:
 *   - every write goes through Raft; a command's answer is the ApplyResult of applying it on this
 *     member, so it reflects the committed log, never a local guess;
 *   - only the leader proposes expiry, and only after a read barrier confirmed its leadership with
 *     a quorum in this round (etcd expired every lease from a leader that did not know it had lost
 *     leadership, #15247); at most one expiry proposal is in flight;
 *   - a new leader proposes no expiry during its first leaderGraceMs (clients' keep-alives need
 *     time to find it after an election), without moving any deadline.
 */
import type { RaftNode } from '../raft/node.ts'
import { type Command, encodeCommand, type UnstampedCommand } from './commands.ts'
import type { ApplyResult, KvStateMachine } from './state-machine.ts'

/** How often the leader looks for expired keys and leases (etcd v2 swept every 500 ms). */
export const expirySweepMsDefault = 500

export interface ReplicatedStoreOptions {
  node: RaftNode
  stateMachine: KvStateMachine
  clock?: () => number
  expirySweepMs?: number
  /**
   * How long a new leader waits before it expires anything (default 0). Clients could not renew
   * while there was no leader; this gives their keep-alives time to reach the new one, so a
   * leader election alone does not expire every short lease (the agent passes its election
   * timeout). Deadlines themselves are not moved: a lease whose owner is really gone still
   * expires once the window has passed.
   */
  leaderGraceMs?: number
}

export class ReplicatedStore {
  readonly node: RaftNode
  readonly stateMachine: KvStateMachine
  readonly #clock: () => number
  readonly #prefix: string
  #seq = 0
  #sweeper: NodeJS.Timeout | undefined
  #sweeping = false
  readonly #leaderGraceMs: number
  /** When this member was first seen leading in its current term (undefined while it follows). */
  #leaderSince: { term: number; ms: number } | undefined

  constructor(options: ReplicatedStoreOptions) {
    this.node = options.node
    this.stateMachine = options.stateMachine
    this.#clock = options.clock ?? Date.now
    this.#leaderGraceMs = options.leaderGraceMs ?? 0
    this.#prefix = `${options.node.id.toString(36)}.${Date.now().toString(36)}.`
    const sweepMs = options.expirySweepMs ?? expirySweepMsDefault
    this.#sweeper = setInterval(() => void this.#sweepExpired(), sweepMs)
    this.#sweeper.unref?.()
  }

  /** A fresh stamp: request id unique to this member incarnation, and this member's clock. */
  stamp(): { id: string; now: number } {
    return { id: `${this.#prefix}${++this.#seq}`, now: this.#clock() }
  }

  /** Proposes a command and resolves with its result as applied on this member. */
  async write(command: UnstampedCommand): Promise<ApplyResult> {
    const stamped = { ...command, ...this.stamp() } as Command
    return (await this.node.propose(encodeCommand(stamped))) as ApplyResult
  }

  /** Proposes an already stamped command (built with stamp(), e.g. by the v2 request planner). */
  async writeStamped(command: Command): Promise<ApplyResult> {
    return (await this.node.propose(encodeCommand(command))) as ApplyResult
  }

  /** Resolves once this member has applied everything committed when it was called. */
  readBarrier(): Promise<void> {
    return this.node.readIndex()
  }

  close(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    this.#sweeper = undefined
  }

  async #sweepExpired(): Promise<void> {
    if (!this.node.isLeader) {
      this.#leaderSince = undefined
      return
    }
    const now = this.#clock()
    if (this.#leaderSince?.term !== this.node.term) this.#leaderSince = { term: this.node.term, ms: now }
    if (now < this.#leaderSince.ms + this.#leaderGraceMs) return
    if (this.#sweeping) return
    this.#sweeping = true
    try {
      if (this.stateMachine.expiredAt(now) === undefined) return
      await this.node.readIndex() // leadership confirmed by a quorum, and caught up
      if (!this.node.isLeader) return
      const stamp = this.stamp()
      const command = this.stateMachine.expireCommand(stamp.id, stamp.now)
      if (command !== undefined) await this.node.propose(encodeCommand(command))
    } catch {
      // Lost leadership or timed out: the next sweep (here or on the new leader) tries again.
    } finally {
      this.#sweeping = false
    }
  }
}
