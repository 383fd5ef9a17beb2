/**
 * Data types of the pure Raft core: entries, messages, persistent state and the Ready batch.
 *
 * Everything here is plain data (no classes, no functions) so that it can be persisted, sent over
 * the wire with msgpackr, cloned by the simulator and compared in tests. Node ids are positive safe
 * integers that are never reused; 0 means "none".
 */

export type NodeId = number
export const noNode: NodeId = 0

export type EntryType = 'normal' | 'conf'

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode'

export interface ConfChange {
  type: ConfChangeType
  nodeId: NodeId
  /** Opaque to the core: the application's description of the member (name, addresses). */
  context?: Uint8Array
}

/** A log entry. A leader's no-op is a normal entry with empty data. */
export interface Entry {
  index: number
  term: number
  type: EntryType
  /** Application bytes for normal entries; empty for conf entries and no-ops. */
  data: Uint8Array
  /** Present exactly when type === 'conf'. */
  change?: ConfChange
}

export interface ConfState {
  voters: NodeId[]
  learners: NodeId[]
}

/** State that must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: number
  vote: NodeId
  commit: number
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

/** Volatile state, reported only when it changes; never needs persisting. */
export interface SoftState {
  leader: NodeId
  role: Role
}

export interface SnapshotMeta {
  index: number
  term: number
  confState: ConfState
}

/**
 * A snapshot's data: the bytes themselves, or bytes kept in a file (a member keeps its own newest
 * snapshot on disk, not in memory: see RaftNode). The core never looks inside the data; it only
 * hands it on, to the transport or in a Ready.
 */
export type SnapshotData = Uint8Array | StoredSnapshotData

/** Snapshot bytes in a file, read only when the snapshot is sent to a peer. */
export interface StoredSnapshotData {
  readonly byteLength: number
  /**
   * Reads `length` bytes at `offset` (clamped to the end). Reading the whole data in order
   * verifies its checksum on the last read; a mismatch or a missing file throws.
   */
  read(offset: number, length: number): Uint8Array
}

export interface Snapshot {
  meta: SnapshotMeta
  data: SnapshotData
}

/** The bytes of a snapshot's data, read whole from its file if it is stored. */
export function snapshotBytes(data: SnapshotData): Uint8Array {
  return data instanceof Uint8Array ? data : data.read(0, data.byteLength)
}

/**
 * A confirmed linearizable read: the state machine may answer the read identified by `ctx` once it
 * has applied every entry up to and including `index`.
 */
export interface ReadState {
  index: number
  ctx: string
}

interface MessageBase {
  from: NodeId
  to: NodeId
  /** The sender's term; 0 for messages that carry no term (forwarded proposals and reads). */
  term: number
}

export interface AppendMessage extends MessageBase {
  type: 'app'
  /** Index and term of the entry immediately preceding `entries`. */
  index: number
  logTerm: number
  entries: Entry[]
  commit: number
  /**
   * Set by a leader on an append without entries to a follower it knows holds every entry up to
   * `index` (replicating, match === index): the append only tells the commit index, and the
   * follower does not answer it when it accepts it, since the answer would tell the leader nothing
   * it does not know (see raft.ts, "Commit notices"). A rejected one is answered as any append.
   */
  commitOnly?: boolean
}

export interface AppendResponseMessage extends MessageBase {
  type: 'appResp'
  /** On success: the highest index now known to match the leader. On rejection: the probed index. */
  index: number
  reject: boolean
  /** On rejection: the follower's hint for the leader's next probe (fast backtracking). */
  rejectHint: number
  /** On rejection: the follower's term at rejectHint. */
  logTerm: number
}

export interface VoteMessage extends MessageBase {
  type: 'vote' | 'preVote'
  lastLogIndex: number
  lastLogTerm: number
  /** Set by a leadership transfer: voters skip the leader-lease check. */
  force: boolean
}

export interface VoteResponseMessage extends MessageBase {
  type: 'voteResp' | 'preVoteResp'
  reject: boolean
}

export interface HeartbeatMessage extends MessageBase {
  type: 'heartbeat'
  commit: number
  /** Read-confirmation round this heartbeat carries (0: none). */
  readRound: number
}

export interface HeartbeatResponseMessage extends MessageBase {
  type: 'heartbeatResp'
  readRound: number
}

export interface SnapshotMessage extends MessageBase {
  type: 'snap'
  snapshot: Snapshot
}

/** A proposal forwarded from a follower to its leader. */
export interface ProposeMessage extends MessageBase {
  type: 'prop'
  entries: Entry[]
}

/** A read forwarded from a follower to its leader. */
export interface ReadIndexMessage extends MessageBase {
  type: 'readIndex'
  ctx: string
}

export interface ReadIndexResponseMessage extends MessageBase {
  type: 'readIndexResp'
  ctx: string
  index: number
}

export interface TimeoutNowMessage extends MessageBase {
  type: 'timeoutNow'
}

/** A leadership transfer request forwarded to the leader; `transferee` should become leader. */
export interface TransferLeaderMessage extends MessageBase {
  type: 'transferLeader'
  transferee: NodeId
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | SnapshotMessage
  | ProposeMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | TimeoutNowMessage
  | TransferLeaderMessage

export type MessageType = Message['type']

/**
 * One batch of work the driver must carry out, in this order (the Ready contract):
 *
 * 1. Persist. If `snapshot` is set, persist it. Then persist `entries`: writing entry i first
 *    deletes every persisted entry with index >= i. Then persist `hardState` if set. All of it
 *    must be durable (fsync) before step 2 when `mustSync` is true.
 * 2. Send `messages`. They may depend on everything persisted in step 1 (a vote, an append
 *    acknowledgement), so they must not leave before it is durable.
 * 3. Apply. Restore the state machine from `snapshot` if set, then apply `committedEntries` in
 *    order. Hold each entry of `readStates` until the applied index reaches its `index`, then
 *    answer that read.
 * 4. Call `advance(ready)`.
 *
 * `step`, `tick` and `propose` may be called between `ready()` and `advance()`; `ready()` may not
 * be called again until `advance()`.
 */
export interface Ready {
  softState: SoftState | undefined
  hardState: HardState | undefined
  snapshot: Snapshot | undefined
  entries: Entry[]
  committedEntries: Entry[]
  messages: Message[]
  readStates: ReadState[]
  mustSync: boolean
}

/** What a restarted node recovers from its storage. */
export interface PersistedState {
  hardState: HardState
  /** The newest persisted snapshot, or undefined if none was ever taken or received. */
  snapshot: Snapshot | undefined
  /**
   * The log's compaction point: the index and term of the entry just before `entries[0]`.
   * Equal to the snapshot's index and term, or older when entries before the snapshot were kept.
   */
  logStart: { index: number; term: number }
  /** Contiguous entries; entries[i].index === logStart.index + 1 + i. */
  entries: Entry[]
}

/** Per-follower replication state as the leader sees it (for status, learner promotion, tests). */
export interface ProgressStatus {
  match: number
  next: number
  state: 'probe' | 'replicate' | 'snapshot'
  isLearner: boolean
  recentActive: boolean
}

export interface Status {
  id: NodeId
  term: number
  vote: NodeId
  role: Role
  leader: NodeId
  commit: number
  applied: number
  lastIndex: number
  confState: ConfState
  /** Present on the leader only. */
  progress: Map<NodeId, ProgressStatus> | undefined
  leadTransferee: NodeId
}
