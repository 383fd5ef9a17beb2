/**
 * Proves linearizable ReadIndex reads (Raft paper §6.4): a read is released only after a quorum
 * answered a heartbeat round that started after it arrived; reads waiting for the same Ready share
 * one round; followers forward reads and get the leader's index; a new leader answers nothing until
 * an entry of its own term is committed; a stale leader never answers; readsPendingMax bounds the
 * queue.
 */
import { describe, expect, it } from 'vitest'
import { bootstrapState } from './bootstrap.ts'
import type { PlantedBug } from './config.ts'
import { drain, electAlone, errorCode, makeCore, TestCluster, titled } from './test-cluster.ts'
import type { Message, NodeId } from './types.ts'

function heartbeatResp(from: NodeId, readRound: number): Message {
  return { type: 'heartbeatResp', from, to: 1, term: 2, readRound }
}

describe('§6.4 ReadIndex on the leader', () => {
  it('a read is released only once a quorum has answered its heartbeat round', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.ignore('heartbeatResp')
    c.core(1).readIndex('a')
    c.process()
    c.tick(3)
    expect(c.node(1).readStates).toEqual([])

    c.heal()
    c.tick(1)
    expect(c.node(1).readStates).toEqual([{ index: 4, ctx: 'a' }])
  })

  it('one voter answering the round completes a quorum of three; an answer to an older round does not', () => {
    const leader = makeCore(1)
    electAlone(leader, [2])
    leader.step({
      type: 'appResp',
      from: 2,
      to: 1,
      term: 2,
      index: 4,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    })
    drain(leader)
    leader.readIndex('r')
    const rd = leader.ready()
    const rounds = rd.messages.flatMap((m) => (m.type === 'heartbeat' ? [[m.to, m.readRound]] : []))
    expect(rounds).toEqual([
      [2, 1],
      [3, 1],
    ])
    expect(rd.readStates).toEqual([])
    leader.advance(rd)

    leader.step(heartbeatResp(3, 0)) // answers a heartbeat sent before the read arrived
    expect(drain(leader).flatMap((r) => r.readStates)).toEqual([])
    leader.step(heartbeatResp(2, 1))
    expect(drain(leader).flatMap((r) => r.readStates)).toEqual([{ index: 4, ctx: 'r' }])
  })

  it('many reads issued before one ready() share a single heartbeat round', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.recordSent = true
    for (let i = 0; i < 10; i++) c.core(1).readIndex(`r${i}`)
    c.process()
    const heartbeats = c.sent.filter((m) => m.type === 'heartbeat')
    expect(heartbeats.map((m) => m.to)).toEqual([2, 3])
    expect(c.node(1).readStates).toEqual(Array.from({ length: 10 }, (_, i) => ({ index: 4, ctx: `r${i}` })))
  })

  it('a single-voter leader answers a read in the next Ready without any heartbeat', () => {
    const core = makeCore(1, bootstrapState([1]))
    core.campaign()
    drain(core)
    core.readIndex('solo')
    const readies = drain(core)
    expect(readies.flatMap((rd) => rd.readStates)).toEqual([{ index: 2, ctx: 'solo' }])
    expect(readies.flatMap((rd) => rd.messages)).toEqual([])
  })

  it('readsPendingMax refuses a further local read with RAFT_READS_PENDING_MAX, and accepts again once reads are released', () => {
    const c = new TestCluster([1, 2, 3], { readsPendingMax: 3 })
    c.elect(1)
    c.ignore('heartbeatResp')
    for (const ctx of ['a', 'b', 'c']) expect(errorCode(() => c.core(1).readIndex(ctx))).toBeUndefined()
    c.process()
    expect(errorCode(() => c.core(1).readIndex('d'))).toBe('RAFT_READS_PENDING_MAX')

    c.heal()
    c.tick(1)
    expect(c.node(1).readStates.map((rs) => rs.ctx)).toEqual(['a', 'b', 'c'])
    expect(errorCode(() => c.core(1).readIndex('e'))).toBeUndefined()
  })
})

describe('§6.4 ReadIndex from a follower', () => {
  it("a follower's read is forwarded to the leader and answered with the leader's commit index", () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    for (let i = 0; i < 3; i++) c.core(1).propose(new Uint8Array([i]))
    c.process()
    const commit = c.core(1).status().commit
    expect(commit).toBe(7)
    c.core(2).readIndex('f')
    c.process()
    expect(c.node(2).readStates).toEqual([{ index: commit, ctx: 'f' }])
    expect(c.node(1).readStates).toEqual([])
  })
})

describe('§6.4 reads and leadership changes', () => {
  it('a new leader answers no read before it has committed an entry of its own term', () => {
    const c = new TestCluster([1, 2, 3])
    c.drop((m) => m.type === 'appResp') // the new leader's no-op cannot commit
    c.elect(1)
    expect(c.core(1).status()).toMatchObject({ role: 'leader', commit: 3, lastIndex: 4 })
    c.core(1).readIndex('local')
    c.core(2).readIndex('forwarded')
    c.process()
    c.tick(3) // heartbeats are answered all along: only the uncommitted no-op holds the reads back
    expect(c.node(1).readStates).toEqual([])
    expect(c.node(2).readStates).toEqual([])

    c.heal()
    c.tick(1)
    expect(c.core(1).status().commit).toBe(4)
    expect(c.node(1).readStates).toEqual([{ index: 4, ctx: 'local' }])
    expect(c.node(2).readStates).toEqual([{ index: 4, ctx: 'forwarded' }])
  })

  // With CheckQuorum the isolated leader steps down, so the read is issued right after the cut;
  // without it the leader believes it leads forever, so the read is issued after the new leader
  // committed a write the stale leader cannot see.
  it.each(
    titled(
      [
        { checkQuorum: true, bugs: [], answered: false },
        { checkQuorum: false, bugs: [], answered: false },
        { checkQuorum: false, bugs: ['readWithoutQuorum'], answered: true },
      ] as { checkQuorum: boolean; bugs: PlantedBug[]; answered: boolean }[],
      (c) =>
        c.bugs.length === 0
          ? `§6.4 an isolated, stale leader never answers a read (checkQuorum ${c.checkQuorum})`
          : 'with the planted bug readWithoutQuorum the stale leader answers a stale index (the test can fail)',
    ),
  )('%s', (_, { checkQuorum, bugs, answered }) => {
    const c = new TestCluster([1, 2, 3], { checkQuorum, plantedBugs: new Set(bugs) })
    c.elect(1)
    c.isolate(1)
    if (checkQuorum) c.core(1).readIndex('stale')
    c.tick(40)
    const newLeader = c.leader() as NodeId
    expect([2, 3]).toContain(newLeader)
    c.core(newLeader).propose(new Uint8Array([9]))
    c.process()
    const newCommit = c.core(newLeader).status().commit
    if (!checkQuorum) {
      expect(c.core(1).status().role).toBe('leader')
      c.core(1).readIndex('stale')
    }
    c.tick(10)
    expect(c.node(1).readStates.length > 0).toBe(answered)
    for (const rs of c.node(1).readStates) expect(rs.index).toBeLessThan(newCommit)

    c.heal()
    c.tick(10)
    expect(c.node(1).readStates.length > 0).toBe(answered)
    expect(c.leader()).toBe(newLeader)
  })

  it('reads waiting on a leader that steps down are dropped, never answered later', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.ignore('heartbeatResp')
    c.core(1).readIndex('pending')
    c.process()
    c.core(1).transferLeadership(2)
    c.process()
    expect(c.leader()).toBe(2)
    c.heal()
    c.tick(10)
    expect(c.node(1).readStates).toEqual([])
  })
})
