/**
 * What the etcd v2 surface needs from the process that serves it. The agent composes these; the
 * API never imports the agent (imports point down: agent → api → kv → raft).
 */

import type { Member } from '../../kv/members.ts'
import type { ReplicatedStore } from '../../kv/replicated-store.ts'
import type { NodeId, Role } from '../../raft/core/types.ts'
import type { RaftNode } from '../../raft/node.ts'
import type { TransportCountersView } from '../../raft/transport/transport-stats.ts'
import type { EtcdV2Limits } from './limits.ts'
import type { StoreStatsView } from './store-stats.ts'

/** The Raft facts the headers, /health and /v2/stats need, read fresh on every request. */
export interface RaftStatusView {
  /** 0 when no leader is known. */
  leader: NodeId
  term: number
  /** The applied Raft index (X-Raft-Index). */
  raftIndex: number
  role: Role
  members: readonly Member[]
}

export interface EtcdV2Deps {
  store: ReplicatedStore
  /** Hex, as etcd shows it in X-Etcd-Cluster-ID. */
  clusterId: string
  memberId: NodeId
  memberName: string
  peerUrls: readonly string[]
  clientUrls: readonly string[]
  version: { server: string; cluster: string }
  raftStatus(): RaftStatusView
  /**
   * The peer transport's append and per-peer counters, for /v2/stats/self and /v2/stats/leader.
   * Absent (a member without a TCP transport, as in-process tests): those counters are 0.
   */
  transportCounters?: TransportCountersView | undefined
  /**
   * Called once, when the routes are registered, with this surface's /v2/stats/store counters, so
   * the agent can read them at scrape time (/metrics).
   */
  onStoreStats?: ((stats: StoreStatsView) => void) | undefined
  /**
   * The id for a member added through POST /v2/members (the agent derives it as it derives every
   * member id, from the cluster token and the member's name). Absent: adding is refused with 501.
   */
  newMemberId?: ((peerUrls: readonly string[]) => NodeId) | undefined
  /** Wall clock for ttl/expiration rendering and stats (injectable for tests). */
  clock?: (() => number) | undefined
  limits?: Partial<EtcdV2Limits> | undefined
  /** TESTING ONLY (agent --planted-bug stale-quorum-reads): quorum=true reads skip ReadIndex. */
  staleQuorumReads?: boolean | undefined
}

/**
 * raftStatus() from a RaftNode and the store's member table. Every keys response reads it for its
 * headers, so it reads the node's fields directly (node.status() builds every follower's progress)
 * and copies the member table only when `members` is read. A class, not an object literal with a
 * getter: V8 builds such a literal through a slow path, about 2 µs per keys response in a CPU
 * profile of local reads (one client, 2026-11-26); the class's getter lives on its prototype.
 */
export function raftStatusOf(node: RaftNode, store: ReplicatedStore): () => RaftStatusView {
  return () => new RaftStatusNow(node, store)
}

class RaftStatusNow implements RaftStatusView {
  readonly leader: NodeId
  readonly term: number
  readonly raftIndex: number
  readonly role: Role
  readonly #store: ReplicatedStore

  constructor(node: RaftNode, store: ReplicatedStore) {
    this.leader = node.leader
    this.term = node.term
    this.raftIndex = store.stateMachine.appliedIndex
    this.role = node.role
    this.#store = store
  }

  get members(): readonly Member[] {
    return this.#store.stateMachine.members()
  }
}
