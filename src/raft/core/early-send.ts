/**
 * Which messages of a Ready may leave before the Ready is persisted (Raft thesis §10.2.1: the
 * leader writes to its disk in parallel with replicating to its followers).
 *
 * Safe: a leader's append, heartbeat, snapshot and timeoutNow messages of its current term. They
 * promise nothing about the leader's own disk: its term and vote were made durable before it could
 * win the election, and it counts its own copy of an entry toward commit only once persisted, so an
 * entry committed by followers alone is already on a quorum of disks.
 * Not safe: anything that answers for this node's durable state (vote grants, append and heartbeat
 * acknowledgements, read answers), or anything sent while not leader.
 */
import type { Message, NodeId } from './types.ts'

export function isSafeBeforePersist(m: Message, leader: { id: NodeId; term: number }): boolean {
  if (m.from !== leader.id || m.term !== leader.term) return false
  return m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap' || m.type === 'timeoutNow'
}
