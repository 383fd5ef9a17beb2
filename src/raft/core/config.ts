/**
 * Configuration of one Raft core. Every queue and window of the core has its limit here, with the
 * default documented in docs/raft.md. Times are in ticks; the driver decides how long a tick is
 * (100 ms by default, so electionTicks 10 is etcd's 1000 ms election timeout).
 */
import type { Prng } from './prng.ts'
import type { NodeId } from './types.ts'

/**
 * Bugs that tests plant on purpose to prove the simulator catches them. Production code never sets
 * any; each one names the rule it breaks.
 */
export type PlantedBug =
  /** Grant a vote in a term even after voting for someone else in it. */
  | 'voteTwiceInTerm'
  /** Advance commit by counting replicas of an entry from an earlier term (Raft paper figure 8). */
  | 'commitOldTermByCount'
  /** Answer a ReadIndex read without a heartbeat round confirming leadership (the leader still
   *  waits for its term's first commit, so only the quorum confirmation is missing). */
  | 'readWithoutQuorum'

export interface RaftConfig {
  id: NodeId
  /** Ticks without hearing from a leader before campaigning; the actual timeout is drawn from [e, 2e). */
  electionTicks: number
  /** Ticks between leader heartbeats. Must be less than electionTicks. */
  heartbeatTicks: number
  /** Injected randomness for election jitter; the core never calls Math.random(). */
  prng: Prng
  /** Campaign with a PreVote round first, so a rejoining node cannot force a term bump. */
  preVote: boolean
  /** A leader that has not heard from a quorum for an election timeout steps down. */
  checkQuorum: boolean
  /**
   * A follower told that its leader's process is down (reportPeerDown) forgets the leader and
   * campaigns after 1 + rank ticks (rank: its place by id among the other voters) instead of a
   * whole election timeout.
   */
  campaignWhenLeaderDown: boolean
  /** Byte limit of the entries in one append message (at least one entry is always sent). */
  appendBytesMax: number
  /** Append messages in flight to one follower in the replicate state. */
  inflightMsgsMax: number
  /** Bytes proposed on the leader and not yet committed; past this, proposals are refused. */
  uncommittedBytesMax: number
  /** Bytes of committed entries handed to the application in one Ready. */
  committedBytesPerReadyMax: number
  /** Linearizable reads waiting for leadership confirmation on one leader. */
  readsPendingMax: number
  /**
   * Outgoing messages queued between two Readies: a memory guard for a driver that stops taking
   * Readies. Past it, new messages are dropped, which Raft tolerates like network loss; snapshot
   * messages are exempt (at most one per follower). At least messagesPendingMin, so that one
   * broadcast always fits and no follower is starved by systematic drops.
   */
  messagesPendingMax: number
  /** Entries kept in the log behind a snapshot, so slightly lagging followers avoid a snapshot. */
  snapshotRetainedEntries: number
  /** A learner may be promoted only when at most this many entries behind the leader's commit. */
  learnerLagEntriesMax: number
  /** Test-only: rules to break on purpose. Empty in production. */
  plantedBugs: ReadonlySet<PlantedBug>
}

export const raftConfigDefaults = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  campaignWhenLeaderDown: true,
  appendBytesMax: 1024 * 1024,
  inflightMsgsMax: 256,
  uncommittedBytesMax: 64 * 1024 * 1024,
  committedBytesPerReadyMax: 16 * 1024 * 1024,
  readsPendingMax: 10_000,
  messagesPendingMax: 10_000,
  snapshotRetainedEntries: 5_000,
  learnerLagEntriesMax: 1_000,
  plantedBugs: new Set<PlantedBug>(),
} as const satisfies Omit<RaftConfig, 'id' | 'prng'>

export const messagesPendingMin = 256

export function makeRaftConfig(options: Pick<RaftConfig, 'id' | 'prng'> & Partial<RaftConfig>): RaftConfig {
  const config: RaftConfig = { ...raftConfigDefaults, ...options }
  if (!Number.isSafeInteger(config.id) || config.id <= 0) throw new Error(`raft: bad node id ${config.id}`)
  if (config.heartbeatTicks < 1 || config.electionTicks <= config.heartbeatTicks) {
    throw new Error('raft: need 1 <= heartbeatTicks < electionTicks')
  }
  if (config.inflightMsgsMax < 1) throw new Error('raft: inflightMsgsMax must be >= 1')
  if (config.messagesPendingMax < messagesPendingMin) {
    throw new Error(`raft: messagesPendingMax must be >= ${messagesPendingMin}`)
  }
  return config
}
