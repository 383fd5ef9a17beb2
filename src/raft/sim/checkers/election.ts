/**
 * Election safety and vote discipline.
 *
 * - At most one leader per term, across all time and restarts. Leaders are observed from Ready
 *   soft states and from leader-only messages (app, heartbeat, snap, timeoutNow carry the sender's
 *   leader term), so a leadership that ends before its Ready is still seen through its messages.
 * - A node grants at most one vote per term (remembered across restarts), and when the grant leaves
 *   the node's persisted hard state already holds that vote or a later term.
 * - A node's persisted term never decreases; within one term its persisted vote never changes once set.
 */
import type { HardState, Message, NodeId } from '../../core/types.ts'
import { nodeIdLimit } from '../partition.ts'
import type { Fail } from './fail.ts'

export class ElectionChecker {
  readonly #fail: Fail
  /** term -> the leader seen in that term. */
  readonly #leaders = new Map<number, NodeId>()
  /** (term, voter) -> the candidate it granted its vote to. */
  readonly #votes = new Map<number, NodeId>()

  constructor(fail: Fail) {
    this.#fail = fail
  }

  /** Terms that had a leader so far. */
  get leaderCount(): number {
    return this.#leaders.size
  }

  leader(term: number, node: NodeId, how: string): void {
    const seen = this.#leaders.get(term)
    if (seen === undefined) {
      this.#leaders.set(term, node)
    } else if (seen !== node) {
      this.#fail('election-safety', `term ${term} has two leaders: ${seen} and ${node} (${how})`)
    }
  }

  /** A message is about to leave `persisted`'s node. */
  sent(m: Message, persisted: HardState): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
      case 'timeoutNow':
        this.leader(m.term, m.from, `sent ${m.type}`)
        return
      case 'voteResp':
        if (!m.reject) this.#voteGranted(m.term, m.from, m.to, persisted)
        return
      default:
        return
    }
  }

  /** A hard state step reached the disk of `node`. */
  persisted(node: NodeId, before: HardState, after: HardState): void {
    if (after.term < before.term) {
      this.#fail('monotonicity', `node ${node} persisted term ${after.term} after ${before.term}`)
    } else if (after.term === before.term && before.vote !== 0 && after.vote !== before.vote) {
      this.#fail(
        'vote-once',
        `node ${node} changed its term ${after.term} vote ${before.vote} -> ${after.vote}`,
      )
    }
  }

  #voteGranted(term: number, voter: NodeId, candidate: NodeId, persisted: HardState): void {
    const key = term * nodeIdLimit + voter
    const seen = this.#votes.get(key)
    if (seen === undefined) this.#votes.set(key, candidate)
    else if (seen !== candidate) {
      this.#fail('vote-once', `node ${voter} voted for ${seen} and ${candidate} in term ${term}`)
    }
    const durable = persisted.term > term || (persisted.term === term && persisted.vote === candidate)
    if (!durable) {
      this.#fail(
        'vote-once',
        `node ${voter} granted term ${term} to ${candidate} before persisting it (disk: term ${persisted.term} vote ${persisted.vote})`,
      )
    }
  }
}
