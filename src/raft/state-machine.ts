/**
 * The contract between the node driver and the replicated state machine (the kv store).
 *
 * apply() is deterministic: the same entries in the same order give the same state and results on
 * every member, with no clock, randomness or IO inside. Anything time-dependent (TTL deadlines)
 * arrives inside the command, stamped by the proposer.
 *
 * The state machine's snapshot holds its state and the index it describes together, so restoring
 * a snapshot restores the applied index atomically with the state.
 */
import type { Entry, NodeId } from './core/types.ts'

export interface StateMachine {
  /** Index of the last entry applied (0 for a new member). */
  readonly appliedIndex: number
  /**
   * Applies one committed entry: a normal entry (its data is a command; empty data is a leader's
   * no-op) or a membership change. Returns the command's result for the proposer to answer with.
   */
  apply(entry: Entry): unknown
  /** The whole state plus appliedIndex, encoded. */
  snapshot(): Uint8Array
  /**
   * Captures the state at appliedIndex now, without encoding it (cheap: references and small
   * copies). pieces() and encode() then give the bytes snapshot() would have given at capture time,
   * even while later entries are applied.
   */
  captureSnapshot(): SnapshotCapture
  /** Replaces the whole state with a snapshot's (as taken by snapshot() on any member). */
  restore(data: Uint8Array): void
  /**
   * Peer URLs of every member recorded from applied membership changes (their `context`), including
   * members known only from a restored snapshot. The driver reads it at start to reach its peers.
   */
  memberPeerUrls(): ReadonlyMap<NodeId, readonly string[]>
}

export interface SnapshotCapture {
  readonly appliedIndex: number
  /**
   * The encoding a piece at a time, across event-loop turns. A piece is valid only until the next
   * one is asked for (an implementation may reuse one buffer): consume it first.
   */
  pieces(): AsyncIterable<Uint8Array>
  /** The whole encoding at once. */
  encode(): Promise<Uint8Array>
}
