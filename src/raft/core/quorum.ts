/**
 * Majority arithmetic, kept pure so property tests can compare it with a naive version.
 */
import type { NodeId } from './types.ts'

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1
}

/**
 * The largest value that a majority of voters have reached: the quorum-th highest of their values.
 * 0 when there are no voters (nothing can be committed without voters).
 */
export function quorumValue(voters: Iterable<NodeId>, valueFor: (id: NodeId) => number): number {
  const values: number[] = []
  for (const id of voters) {
    // Insertion, highest first. Voter sets are small (3 to 7), and Array.prototype.sort allocated
    // a work array on every call, which is on the path of every acknowledgement a leader gets.
    const value = valueFor(id)
    let at = values.length
    values.push(value)
    while (at > 0 && (values[at - 1] as number) < value) {
      values[at] = values[at - 1] as number
      at--
    }
    values[at] = value
  }
  if (values.length === 0) return 0
  return values[quorumSize(values.length) - 1] as number
}

export type VoteResult = 'won' | 'lost' | 'pending'

/** Tally of an election among `voters`; votes from non-voters do not count. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0
  let rejected = 0
  for (const id of voters) {
    const vote = votes.get(id)
    if (vote === true) granted++
    else if (vote === false) rejected++
  }
  const needed = quorumSize(voters.size)
  if (granted >= needed) return 'won'
  if (voters.size - rejected < needed) return 'lost'
  return 'pending'
}
