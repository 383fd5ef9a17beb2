/**
 * Learner promotion: while this member leads, it promotes each learner that has caught up to a
 * voter (etcd promotes at >= 90% caught up; we require the learner to be responsive and within
 * the core's learnerLagEntriesMax of the commit, which the core checks again).
 *
 * Invariants: only the leader proposes; at most one promotion is in flight (the core allows one
 * membership change at a time anyway); a learner that never answered (match 0) is not promoted.
 */
import { isCairnError } from '../errors.ts'
import type { RaftNode } from '../raft/node.ts'

/** How often the leader looks at its learners. */
export const promoteCheckMs = 250

export function startPromoter(node: RaftNode, onPromoted: (id: number) => void = () => {}): () => void {
  let busy = false
  const check = async () => {
    if (busy || !node.isLeader) return
    const status = node.status()
    const ready = [...(status.progress ?? [])].find(
      ([id, pr]) => pr.isLearner && pr.recentActive && pr.match > 0 && status.confState.learners.includes(id),
    )
    if (ready === undefined) return
    busy = true
    try {
      await node.proposeConfChange({ type: 'addVoter', nodeId: ready[0] })
      onPromoted(ready[0])
    } catch (error) {
      // Not caught up yet, another change pending, or leadership lost: the next check retries.
      if (!isCairnError(error)) throw error
    } finally {
      busy = false
    }
  }
  const timer = setInterval(() => void check().catch(() => {}), promoteCheckMs)
  timer.unref?.()
  return () => clearInterval(timer)
}
