/**
 * What the simulator reports: one broken invariant, with a short explanation.
 *
 * Checkers throw a SimViolation; the run stops at the first one and prints it with the seed, the
 * recent trace and the replay command.
 */

export type Invariant =
  /** At most one leader per term, across all time (Raft figure 3). */
  | 'election-safety'
  /** A node grants at most one vote per term, and the vote is durable before the grant leaves. */
  | 'vote-once'
  /** Same index and term => same entry and the same prefix (Raft figure 3). */
  | 'log-matching'
  /** Every committed entry is in the log of every leader of a later term (Raft figure 3). */
  | 'leader-completeness'
  /** Every node applies a prefix of one global history of entries (Raft figure 3). */
  | 'state-machine-safety'
  /** A write acknowledged to a client disappears from, or differs in, some node's applied history. */
  | 'acked-write-lost'
  /** After a restart the node recovered less than it had persisted. */
  | 'durability'
  /** Term, vote or commit went backwards on a node. */
  | 'monotonicity'
  /** A ReadIndex read missed a write acknowledged before the read started. */
  | 'read-linearizability'
  /** The healed cluster failed to elect, finish client work or converge in time. */
  | 'liveness'
  /** The core broke the Ready contract (gaps, entries behind the snapshot, commit beyond the log). */
  | 'ready-contract'
  /** The core threw something that is not a CairnError (an assertion or a crash). */
  | 'core-exception'
  /** A node refused a message no correct peer could send in its state (RaftCore.messagesRefused). */
  | 'peer-protocol'

export const allInvariants: Invariant[] = [
  'election-safety',
  'vote-once',
  'log-matching',
  'leader-completeness',
  'state-machine-safety',
  'acked-write-lost',
  'durability',
  'monotonicity',
  'read-linearizability',
  'liveness',
  'ready-contract',
  'core-exception',
  'peer-protocol',
]

export class SimViolation extends Error {
  readonly invariant: Invariant

  constructor(invariant: Invariant, detail: string) {
    super(detail)
    this.name = 'SimViolation'
    this.invariant = invariant
  }
}
