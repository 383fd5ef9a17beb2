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
 * and copies the member table only when `members` is read.
 */
export function raftStatusOf(node: RaftNode, store: ReplicatedStore): () => RaftStatusView {
  return () => ({
    leader: node.leader,
    term: node.term,
    raftIndex: store.stateMachine.appliedIndex,
    role: node.role,
    get members() {
      return store.stateMachine.members()
    },
  })
}
