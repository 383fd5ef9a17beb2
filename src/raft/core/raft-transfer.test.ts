/**
 * Proves leadership transfer (Raft dissertation §3.10): an up-to-date transferee becomes leader of the
 * next term at once, with no election timeout; a lagging one is caught up first; proposals are
 * refused while a transfer runs; a transfer that cannot finish is abandoned after an election
 * timeout; requests on followers are forwarded; impossible transferees are ignored.
 */
import { describe, expect, it } from 'vitest'
import { emptyState } from './bootstrap.ts'
import { errorCode, TestCluster, titled } from './test-cluster.ts'
import type { NodeId } from './types.ts'

const electionTicks = 10

function proposeMany(c: TestCluster, leader: NodeId, count: number): void {
  for (let i = 0; i < count; i++) c.core(leader).propose(new Uint8Array([i]))
  c.process()
}

describe('leadership transfer', () => {
  it('§3.10 an up-to-date follower becomes leader of the next term at once, without a tick', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    const term = c.core(1).status().term
    c.core(1).transferLeadership(2)
    c.process()
    expect(c.leader()).toBe(2)
    for (const id of [1, 2, 3]) expect(c.core(id).status()).toMatchObject({ term: term + 1, leader: 2 })
  })

  it('§3.10 a lagging transferee is caught up first, then told to campaign', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.cut(1, 3)
    proposeMany(c, 1, 5)
    const lastIndex = c.core(1).status().lastIndex
    expect(c.core(3).status().lastIndex).toBeLessThan(lastIndex)
    c.heal()
    c.recordDelivered = true
    c.core(1).transferLeadership(3)
    c.process()

    expect(c.leader()).toBe(3)
    const timeoutNow = c.delivered.findIndex((m) => m.type === 'timeoutNow')
    expect(timeoutNow).toBeGreaterThan(0)
    const caughtUp = c.delivered
      .slice(0, timeoutNow)
      .filter((m) => m.type === 'appResp' && m.from === 3 && !m.reject && m.index === lastIndex)
    expect(caughtUp).toHaveLength(1)
    // Every entry of the old leader survived the transfer.
    expect(c.core(3).status().commit).toBe(lastIndex + 1)
  })

  it('proposals are refused with RAFT_LEADER_TRANSFER_IN_PROGRESS during a transfer', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.cut(1, 3)
    proposeMany(c, 1, 2)
    c.core(1).transferLeadership(3)
    c.process()
    expect(c.core(1).status()).toMatchObject({ role: 'leader', leadTransferee: 3 })
    const lastIndex = c.core(1).status().lastIndex
    expect(errorCode(() => c.core(1).propose(new Uint8Array([1])))).toBe('RAFT_LEADER_TRANSFER_IN_PROGRESS')
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 5 }))).toBe(
      'RAFT_LEADER_TRANSFER_IN_PROGRESS',
    )
    expect(c.core(1).status().lastIndex).toBe(lastIndex)
  })

  it('a transfer that cannot finish is abandoned after an election timeout, and proposals flow again', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    c.core(1).transferLeadership(3)
    c.process()
    c.tick(electionTicks - 1)
    expect(c.core(1).status()).toMatchObject({ role: 'leader', leadTransferee: 3 })
    c.tick(1)
    expect(c.core(1).status()).toMatchObject({ role: 'leader', leadTransferee: 0 })
    expect(errorCode(() => c.core(1).propose(new Uint8Array([1])))).toBeUndefined()
  })

  it('a transfer requested on a follower is forwarded to the leader', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.core(3).transferLeadership(2)
    c.process()
    expect(c.leader()).toBe(2)
  })

  it.each(
    titled(
      [
        { name: 'the leader itself', transferee: 1 },
        { name: 'a node that is not a member', transferee: 9 },
        { name: 'a learner', transferee: 4 },
      ],
      (c) => `a transfer to ${c.name} is ignored`,
    ),
  )('%s', (_, { transferee }) => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.addNode(4, emptyState())
    c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 4 })
    c.process()
    const term = c.core(1).status().term
    c.core(1).transferLeadership(transferee)
    c.process()
    expect(c.leader()).toBe(1)
    expect(c.core(1).status()).toMatchObject({ term, leadTransferee: 0 })
    expect(errorCode(() => c.core(1).propose(new Uint8Array([1])))).toBeUndefined()
  })
})
