/**
 * Proves single-step membership changes (Raft paper §6, §4.2.1 of the dissertation): learners get the
 * log but neither vote nor count toward commit; promotion waits until a learner has caught up; one
 * change is pending at a time; invalid changes are refused; a change takes effect when applied, not
 * when appended; a removed leader steps down and the rest elect a new one; a member added later
 * learns the founders' membership from the log (or a snapshot) and ends with the same configuration.
 */
import { describe, expect, it } from 'vitest'
import { bootstrapState, emptyState } from './bootstrap.ts'
import { drain, errorCode, makeCore, TestCluster, titled } from './test-cluster.ts'
import type { ConfChange, Entry, NodeId } from './types.ts'

const electionTicks = 10

function proposeMany(c: TestCluster, leader: NodeId, count: number): void {
  for (let i = 0; i < count; i++) c.core(leader).propose(new Uint8Array([i]))
  c.process()
}

/** A 3-voter cluster led by 1, with node 4 started empty and added as a learner. */
function clusterWithLearner(overrides: Parameters<typeof makeCore>[2] = {}): TestCluster {
  const c = new TestCluster([1, 2, 3], overrides)
  c.elect(1)
  c.addNode(4, emptyState())
  c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 4 })
  c.process()
  return c
}

describe('learners', () => {
  it('a learner receives the whole log and the commit index, and is tracked as a learner', () => {
    const c = clusterWithLearner()
    proposeMany(c, 1, 3)
    const leader = c.core(1).status()
    expect(c.core(4).status()).toMatchObject({
      lastIndex: leader.lastIndex,
      commit: leader.commit,
      applied: leader.commit,
      confState: { voters: [1, 2, 3], learners: [4] },
    })
    expect(leader.progress?.get(4)).toMatchObject({ isLearner: true, match: leader.lastIndex })
  })

  it('§6 a learner never campaigns and is never asked to vote', () => {
    const c = clusterWithLearner()
    c.isolate(4)
    c.core(4).campaign()
    c.tick(5 * electionTicks)
    expect(c.core(4).status()).toMatchObject({ role: 'follower', term: c.core(1).status().term })

    c.heal()
    c.recordSent = true
    c.core(1).transferLeadership(2)
    c.process()
    expect(c.leader()).toBe(2)
    const voteRequests = c.sent.filter((m) => m.type === 'vote' || m.type === 'preVote')
    expect(voteRequests.map((m) => m.to).sort()).toEqual([1, 3])
  })

  it('§6 a learner does not count toward the commit quorum', () => {
    const c = clusterWithLearner()
    const before = c.core(1).status().commit
    c.cut(1, 2)
    c.cut(1, 3)
    c.core(1).propose(new Uint8Array([1]))
    c.process()
    expect(c.core(4).status().lastIndex).toBe(before + 1) // the learner has it ...
    expect(c.core(1).status().commit).toBe(before) // ... but leader + learner are no quorum
  })

  it('a learner that never answered is not caught up, however short the log (promoting it would cost a quorum)', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 4 }) // node 4 never starts
    c.process()
    expect(c.core(1).status().progress?.get(4)?.match).toBe(0)
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addVoter', nodeId: 4 }))).toBe(
      'RAFT_LEARNER_NOT_CAUGHT_UP',
    )
  })

  it('promotion is refused with RAFT_LEARNER_NOT_CAUGHT_UP while the learner lags, accepted once it caught up', () => {
    const c = clusterWithLearner({ learnerLagEntriesMax: 2 })
    c.cut(1, 4)
    proposeMany(c, 1, 10)
    const lastIndex = c.core(1).status().lastIndex
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addVoter', nodeId: 4 }))).toBe(
      'RAFT_LEARNER_NOT_CAUGHT_UP',
    )
    expect(c.core(1).status().lastIndex).toBe(lastIndex) // nothing was appended

    c.heal()
    c.tick(1)
    expect(c.core(4).status().commit).toBe(c.core(1).status().commit)
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addVoter', nodeId: 4 }))).toBeUndefined()
    c.process()
    for (const id of [1, 2, 3, 4]) {
      expect(c.core(id).status().confState).toEqual({ voters: [1, 2, 3, 4], learners: [] })
    }
    expect(c.core(1).status().progress?.get(4)?.isLearner).toBe(false)
  })
})

describe('§6 one change at a time', () => {
  it('a second change is refused with RAFT_CONF_CHANGE_PENDING until the first is applied', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 4 })
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 5 }))).toBe(
      'RAFT_CONF_CHANGE_PENDING',
    )
    c.process()
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 5 }))).toBeUndefined()
  })

  it('a new leader accepts no change before its own first entry is applied', () => {
    const c = new TestCluster([1, 2, 3])
    c.drop((m) => m.type === 'appResp')
    c.elect(1)
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 4 }))).toBe(
      'RAFT_CONF_CHANGE_PENDING',
    )
    c.heal()
    c.tick(1)
    expect(errorCode(() => c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 4 }))).toBeUndefined()
  })

  it.each(
    titled(
      [
        { name: 'adding an existing voter as voter', change: { type: 'addVoter', nodeId: 2 } },
        { name: 'adding an existing voter as learner', change: { type: 'addLearner', nodeId: 2 } },
        { name: 'adding an existing learner as learner', change: { type: 'addLearner', nodeId: 4 } },
        { name: 'removing a node that is not a member', change: { type: 'removeNode', nodeId: 9 } },
        { name: 'node id 0', change: { type: 'addLearner', nodeId: 0 } },
        { name: 'a negative node id', change: { type: 'addVoter', nodeId: -3 } },
        { name: 'a fractional node id', change: { type: 'addLearner', nodeId: 1.5 } },
      ] as { name: string; change: ConfChange }[],
      (c) => `${c.name} is refused with RAFT_CONF_CHANGE_INVALID and changes nothing`,
    ),
  )('%s', (_, { change }) => {
    const c = clusterWithLearner()
    const before = c.core(1).status()
    expect(errorCode(() => c.core(1).proposeConfChange(change))).toBe('RAFT_CONF_CHANGE_INVALID')
    c.process()
    expect(c.core(1).status()).toEqual(before)
  })

  it('removing the last voter is refused with RAFT_CONF_CHANGE_INVALID', () => {
    const core = makeCore(1, bootstrapState([1]))
    core.campaign()
    drain(core)
    expect(errorCode(() => core.proposeConfChange({ type: 'removeNode', nodeId: 1 }))).toBe(
      'RAFT_CONF_CHANGE_INVALID',
    )
  })
})

describe('§6 a change takes effect when applied', () => {
  it('on the leader: not when appended, not when committed, only when the Ready applying it is advanced', () => {
    const core = makeCore(1, bootstrapState([1]))
    core.campaign()
    drain(core)
    const before = { voters: [1], learners: [] }

    core.proposeConfChange({ type: 'addLearner', nodeId: 2 })
    const appended = core.ready()
    expect(appended.entries.map((e) => e.type)).toEqual(['conf'])
    core.advance(appended)
    expect(core.status()).toMatchObject({ commit: 3, applied: 2, confState: before })

    const applying = core.ready()
    expect(applying.committedEntries.map((e) => e.index)).toEqual([3])
    expect(core.status().confState).toEqual(before)
    core.advance(applying)
    expect(core.status().confState).toEqual({ voters: [1], learners: [2] })
  })

  it('on a follower: an appended, uncommitted change does not count; it applies after commit', () => {
    const follower = makeCore(2)
    const change: Entry = {
      index: 4,
      term: 2,
      type: 'conf',
      data: new Uint8Array(0),
      change: { type: 'removeNode', nodeId: 3 },
    }
    follower.step({
      type: 'app',
      from: 1,
      to: 2,
      term: 2,
      index: 3,
      logTerm: 1,
      entries: [change],
      commit: 3,
    })
    drain(follower)
    expect(follower.status()).toMatchObject({ lastIndex: 4, commit: 3, confState: { voters: [1, 2, 3] } })

    follower.step({ type: 'heartbeat', from: 1, to: 2, term: 2, commit: 4, readRound: 0 })
    const rd = follower.ready()
    expect(rd.committedEntries).toEqual([change])
    expect(follower.status().confState.voters).toEqual([1, 2, 3])
    follower.advance(rd)
    expect(follower.status().confState.voters).toEqual([1, 2])
  })

  it('a membership change proposed on a follower is forwarded to the leader and applied everywhere', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.core(2).proposeConfChange({ type: 'addLearner', nodeId: 7 })
    c.process()
    for (const id of [1, 2, 3]) expect(c.core(id).status().confState.learners).toEqual([7])
  })
})

describe('§6 removing members', () => {
  it('a removed leader steps down once it applies its removal, and the rest elect a new leader', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    const term = c.core(1).status().term
    c.core(1).proposeConfChange({ type: 'removeNode', nodeId: 1 })
    c.process()
    expect(c.core(1).status()).toMatchObject({ role: 'follower', leader: 0 })
    for (const id of [2, 3]) expect(c.core(id).status().confState).toEqual({ voters: [2, 3], learners: [] })

    c.tick(3 * electionTicks)
    const leader = c.leader() as NodeId
    expect([2, 3]).toContain(leader)
    expect(c.core(leader).status().term).toBe(term + 1)
    const commit = c.core(leader).status().commit
    c.core(leader).propose(new Uint8Array([1]))
    c.process()
    for (const id of [2, 3]) expect(c.core(id).status().commit).toBe(commit + 1)
    // The removed node is not a voter any more: it never campaigns.
    c.tick(5 * electionTicks)
    expect(c.core(1).status()).toMatchObject({ role: 'follower', term })
  })

  it('a removed follower does not disrupt the cluster', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    const term = c.core(1).status().term
    c.core(1).proposeConfChange({ type: 'removeNode', nodeId: 3 })
    c.process()
    c.tick(10 * electionTicks)
    expect(c.leader()).toBe(1)
    expect(c.core(1).status()).toMatchObject({ term, confState: { voters: [1, 2], learners: [] } })
    expect(c.core(3).status().role).not.toBe('leader')
  })
})

describe('§6 joining', () => {
  it.each(
    titled([{ compacted: false }, { compacted: true }], (c) =>
      c.compacted
        ? 'a node started empty gets a snapshot holding the founders’ membership, then the rest, and ends with the same confState'
        : 'a node started empty gets the whole log, founders’ conf entries included, and ends with the same confState',
    ),
  )('%s', (_, { compacted }) => {
    const c = new TestCluster([1, 2, 3], { snapshotRetainedEntries: 0 })
    c.elect(1)
    proposeMany(c, 1, 3)
    if (compacted) c.compact(1)
    c.addNode(4, emptyState())
    c.core(1).proposeConfChange({ type: 'addVoter', nodeId: 4 })
    c.process()

    const expected = { voters: [1, 2, 3, 4], learners: [] }
    for (const id of [1, 2, 3, 4]) expect(c.core(id).status().confState).toEqual(expected)
    const leader = c.core(1).status()
    expect(c.core(4).status()).toMatchObject({ lastIndex: leader.lastIndex, commit: leader.commit })
    const changes = c.node(4).applied.flatMap((e) => (e.change ? [[e.change.type, e.change.nodeId]] : []))
    if (compacted) {
      expect(c.node(4).snapshotsApplied.map((s) => s.meta.confState)).toEqual([
        { voters: [1, 2, 3], learners: [] },
      ])
      expect(changes).toEqual([['addVoter', 4]])
    } else {
      expect(c.node(4).snapshotsApplied).toEqual([])
      expect(changes).toEqual([
        ['addVoter', 1],
        ['addVoter', 2],
        ['addVoter', 3],
        ['addVoter', 4],
      ])
    }
    // The new voter counts: with 4 voters, leader + 4 + one more make the quorum.
    c.cut(1, 3)
    c.cut(1, 2)
    const commit = leader.commit
    c.core(1).propose(new Uint8Array([1]))
    c.process()
    expect(c.core(1).status().commit).toBe(commit) // 1 and 4 are two of four: no quorum
    c.heal()
    c.cut(1, 3)
    c.tick(1)
    expect(c.core(1).status().commit).toBe(commit + 1) // 1, 2 and 4 are three of four
  })
})
