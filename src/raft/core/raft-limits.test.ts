/**
 * Proves the proposal limits and refusals: uncommittedBytesMax bounds the bytes a leader holds
 * uncommitted (counting only what was proposed, and always admitting one proposal when nothing is
 * pending), refused forwarded proposals are dropped without harm, and a node that knows no leader
 * refuses proposals, reads and transfers with RAFT_NO_LEADER.
 */
import { describe, expect, it } from 'vitest'
import { bootstrapState } from './bootstrap.ts'
import { entryOverheadBytes } from './log.ts'
import type { RaftCore } from './raft.ts'
import { drain, electAlone, errorCode, makeCore, TestCluster, titled } from './test-cluster.ts'

/** Data of `size` bytes as the limit counts them (data plus the per-entry overhead). */
const ofSize = (size: number): Uint8Array => new Uint8Array(size - entryOverheadBytes)

describe('uncommittedBytesMax', () => {
  it('refuses a proposal with RAFT_UNCOMMITTED_BYTES_MAX once the uncommitted bytes would exceed it', () => {
    const c = new TestCluster([1, 2, 3], { uncommittedBytesMax: 1_000 })
    c.elect(1)
    c.isolate(1) // nothing commits
    const leader = c.core(1)
    expect(errorCode(() => leader.propose(ofSize(400)))).toBeUndefined()
    expect(errorCode(() => leader.propose(ofSize(600)))).toBeUndefined() // exactly at the limit
    const lastIndex = leader.status().lastIndex
    expect(errorCode(() => leader.propose(ofSize(25)))).toBe('RAFT_UNCOMMITTED_BYTES_MAX')
    expect(leader.status().lastIndex).toBe(lastIndex)

    // Once they commit, the bytes are released.
    c.heal()
    c.tick(1)
    expect(leader.status().commit).toBe(lastIndex)
    expect(errorCode(() => leader.propose(ofSize(1_000)))).toBeUndefined()
  })

  it('admits a single proposal larger than the limit when nothing is pending, but nothing after it', () => {
    const c = new TestCluster([1, 2, 3], { uncommittedBytesMax: 1_000 })
    c.elect(1)
    c.isolate(1)
    expect(errorCode(() => c.core(1).propose(ofSize(5_000)))).toBeUndefined()
    expect(errorCode(() => c.core(1).propose(ofSize(25)))).toBe('RAFT_UNCOMMITTED_BYTES_MAX')
  })

  it('counts only proposed bytes: committing the leader’s no-op releases nothing', () => {
    const leader = makeCore(1, bootstrapState([1, 2, 3]), { uncommittedBytesMax: 250 })
    electAlone(leader, [2]) // no-op at 4, not yet acknowledged
    leader.propose(ofSize(124)) // 5
    leader.propose(ofSize(100)) // 6: 224 bytes pending
    drain(leader)
    leader.step({
      type: 'appResp',
      from: 2,
      to: 1,
      term: 2,
      index: 5,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    })
    drain(leader)
    expect(leader.status().commit).toBe(5)
    // Entry 6 (100 bytes) is all that is pending: 100 + 160 > 250.
    expect(errorCode(() => leader.propose(ofSize(160)))).toBe('RAFT_UNCOMMITTED_BYTES_MAX')
    expect(errorCode(() => leader.propose(ofSize(150)))).toBeUndefined()
  })

  it('a forwarded proposal the leader refuses is dropped: the follower does not throw, the log does not grow', () => {
    const c = new TestCluster([1, 2, 3], { uncommittedBytesMax: 1_000 })
    c.elect(1)
    c.drop((m) => m.type === 'appResp')
    c.core(1).propose(ofSize(900))
    c.process()
    const lastIndex = c.core(1).status().lastIndex
    expect(errorCode(() => c.core(2).propose(ofSize(200)))).toBeUndefined()
    c.process()
    expect(c.core(1).status().lastIndex).toBe(lastIndex)
  })
})

describe('RAFT_NO_LEADER', () => {
  const requests: { name: string; run: (core: RaftCore) => void }[] = [
    { name: 'propose', run: (core) => core.propose(new Uint8Array([1])) },
    { name: 'proposeConfChange', run: (core) => core.proposeConfChange({ type: 'addLearner', nodeId: 4 }) },
    { name: 'readIndex', run: (core) => core.readIndex('r') },
    { name: 'transferLeadership', run: (core) => core.transferLeadership(2) },
  ]
  const states: { name: string; make: () => RaftCore }[] = [
    { name: 'a follower that knows no leader', make: () => makeCore(1) },
    {
      name: 'a pre-candidate',
      make: () => {
        const core = makeCore(1)
        core.campaign()
        return core
      },
    },
    {
      name: 'a candidate',
      make: () => {
        const core = makeCore(1, bootstrapState([1, 2, 3]), { preVote: false })
        core.campaign()
        return core
      },
    },
  ]

  it.each(
    titled(
      states.flatMap((s) => requests.map((r) => ({ state: s, request: r }))),
      (c) => `${c.state.name} refuses ${c.request.name} with RAFT_NO_LEADER`,
    ),
  )('%s', (_, { state, request }) => {
    const core = state.make()
    const lastIndex = core.status().lastIndex
    expect(errorCode(() => request.run(core))).toBe('RAFT_NO_LEADER')
    expect(core.status().lastIndex).toBe(lastIndex)
  })

  it('a follower that knows its leader forwards instead of refusing', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    expect(errorCode(() => c.core(2).propose(new Uint8Array([1])))).toBeUndefined()
    c.process()
    expect(c.core(1).status().commit).toBe(5)
  })
})

describe('messagesPendingMax', () => {
  it('drops outgoing messages past the limit between two Readies, counts them, and sends again after a Ready', () => {
    const core = makeCore(1, bootstrapState([1, 2, 3, 4, 5]), { checkQuorum: false, messagesPendingMax: 256 })
    electAlone(core, [2, 3])
    for (let i = 0; i < 100; i++) core.tick() // 100 heartbeat rounds to 4 followers, no Ready taken
    const queued = drain(core).flatMap((rd) => rd.messages)
    expect(queued).toHaveLength(256)
    expect(core.messagesDropped).toBe(400 - 256)
    core.tick()
    expect(drain(core).flatMap((rd) => rd.messages)).toHaveLength(4)
  })

  it('refuses a limit below one broadcast-safe floor, which would starve followers', () => {
    expect(() => makeCore(1, bootstrapState([1, 2, 3]), { messagesPendingMax: 2 })).toThrow(
      /messagesPendingMax must be >= 256/,
    )
  })
})
