/**
 * Proves leader election (Raft paper §5.2, §5.4.1, §9.6): randomized timeouts, majority wins and
 * losses, one vote per term persisted with its response, the up-to-date restriction, term rules for
 * newer and stale messages, PreVote, CheckQuorum, the leader lease and its override by a transfer,
 * and that a node with unapplied committed membership changes does not campaign.
 *
 * Single cores are driven with hand-built messages where the rule is about one node's reaction;
 * TestCluster is used where the rule is about what a cluster does.
 */
import { describe, expect, it } from 'vitest'
import { bootstrapState } from './bootstrap.ts'
import { makeRaftConfig } from './config.ts'
import { Prng } from './prng.ts'
import { RaftCore } from './raft.ts'
import {
  bootstrapStateWithTail,
  drain,
  drainMessages,
  electAlone,
  makeCore,
  TestCluster,
  titled,
} from './test-cluster.ts'
import type { Message, NodeId, PersistedState, Role, VoteMessage } from './types.ts'

const electionTicks = 10

function voteRequest(
  from: NodeId,
  to: NodeId,
  term: number,
  last: { index: number; term: number },
  options: { type?: 'vote' | 'preVote'; force?: boolean } = {},
): VoteMessage {
  return {
    type: options.type ?? 'vote',
    from,
    to,
    term,
    lastLogIndex: last.index,
    lastLogTerm: last.term,
    force: options.force ?? false,
  }
}

function heartbeat(from: NodeId, to: NodeId, term: number, commit = 0): Message {
  return { type: 'heartbeat', from, to, term, commit, readRound: 0 }
}

describe('election timeout', () => {
  it('§5.2 a follower that hears nothing campaigns after a timeout drawn from [electionTicks, 2*electionTicks)', () => {
    const observed = new Set<number>()
    for (let seed = 1; seed <= 200; seed++) {
      const core = new RaftCore(makeRaftConfig({ id: 1, prng: new Prng(seed) }), bootstrapState([1, 2, 3]))
      drain(core)
      let ticks = 0
      while (core.status().role === 'follower' && ticks < 3 * electionTicks) {
        core.tick()
        ticks++
      }
      expect(ticks).toBeGreaterThanOrEqual(electionTicks)
      expect(ticks).toBeLessThan(2 * electionTicks)
      observed.add(ticks)
    }
    // The jitter is real: 200 seeds spread over (nearly) the whole window.
    expect(observed.size).toBeGreaterThanOrEqual(8)
  })

  it('§9.6 with PreVote the campaign starts with preVote requests for term + 1, without bumping the term', () => {
    const core = makeCore(1)
    for (let i = 0; i < 2 * electionTicks; i++) core.tick()
    const status = core.status()
    expect([status.role, status.term, status.vote]).toEqual(['preCandidate', 1, 0])
    const requests = drainMessages(core)
    expect(requests.map((m) => [m.type, m.to, m.term])).toEqual([
      ['preVote', 2, 2],
      ['preVote', 3, 2],
    ])
  })

  it('the same seed campaigns at the same tick (elections are reproducible)', () => {
    const ticksToCampaign = (seed: number): number => {
      const core = new RaftCore(makeRaftConfig({ id: 1, prng: new Prng(seed) }), bootstrapState([1, 2, 3]))
      drain(core)
      let ticks = 0
      while (core.status().role === 'follower') {
        core.tick()
        ticks++
      }
      return ticks
    }
    for (const seed of [1, 2, 3, 99]) expect(ticksToCampaign(seed)).toBe(ticksToCampaign(seed))
  })
})

describe('§5.2 vote counting', () => {
  it.each(
    titled(
      [
        {
          name: 'grants from a majority (with its own vote) make it leader',
          responses: [
            [2, true],
            [3, true],
          ],
          role: 'leader',
        },
        {
          name: 'a majority of rejections makes it a follower',
          responses: [
            [2, false],
            [3, false],
            [4, false],
          ],
          role: 'follower',
        },
        {
          name: 'two rejections of five voters leave it waiting',
          responses: [
            [2, false],
            [3, false],
          ],
          role: 'candidate',
        },
        {
          name: 'mixed answers win once grants reach a majority',
          responses: [
            [2, false],
            [3, true],
            [4, false],
            [5, true],
          ],
          role: 'leader',
        },
        {
          name: 'a voter answering twice counts once',
          responses: [
            [2, false],
            [2, false],
            [2, false],
          ],
          role: 'candidate',
        },
        {
          name: 'grants from non-voters do not count',
          responses: [
            [8, true],
            [9, true],
          ],
          role: 'candidate',
        },
      ] as const,
      (c) => `a candidate among 5 voters: ${c.name}`,
    ),
  )('%s', (_, { responses, role }) => {
    const core = makeCore(1, bootstrapState([1, 2, 3, 4, 5]), { preVote: false })
    core.campaign()
    drain(core)
    expect(core.status()).toMatchObject({ role: 'candidate', term: 2, vote: 1 })
    for (const [from, granted] of responses) {
      core.step({ type: 'voteResp', from, to: 1, term: 2, reject: !granted })
    }
    expect(core.status()).toMatchObject({ role, term: 2 })
  })

  it('a new leader at once sends every voter an append carrying its first entry', () => {
    const core = makeCore(1, bootstrapState([1, 2, 3]), { preVote: false })
    const sent = electAlone(core, [2])
    const appends = sent.filter((m) => m.type === 'app')
    expect(appends.map((m) => m.to)).toEqual([2, 3])
    for (const m of appends) {
      if (m.type === 'app') expect(m.entries.map((e) => [e.index, e.term])).toEqual([[4, 2]])
    }
  })
})

describe('§5.2 one vote per term', () => {
  it('a voter grants one candidate per term, and its vote is in the same Ready as the vote response', () => {
    const voter = makeCore(2)
    voter.step(voteRequest(1, 2, 2, { index: 3, term: 1 }))
    const rd = voter.ready()
    expect(rd.hardState).toEqual({ term: 2, vote: 1, commit: 3 })
    expect(rd.mustSync).toBe(true)
    expect(rd.messages).toEqual([{ type: 'voteResp', from: 2, to: 1, term: 2, reject: false }])
    voter.advance(rd)

    voter.step(voteRequest(3, 2, 2, { index: 3, term: 1 }))
    expect(drainMessages(voter)).toEqual([{ type: 'voteResp', from: 2, to: 3, term: 2, reject: true }])
    expect(voter.status().vote).toBe(1)

    // The candidate it voted for may ask again (a lost response): the answer is the same.
    voter.step(voteRequest(1, 2, 2, { index: 3, term: 1 }))
    expect(drainMessages(voter)).toEqual([{ type: 'voteResp', from: 2, to: 1, term: 2, reject: false }])
  })

  it('a candidate has voted for itself and rejects another candidate of its term', () => {
    const candidate = makeCore(1, bootstrapState([1, 2, 3]), { preVote: false })
    candidate.campaign()
    drain(candidate)
    candidate.step(voteRequest(3, 1, 2, { index: 3, term: 1 }))
    expect(drainMessages(candidate)).toEqual([{ type: 'voteResp', from: 1, to: 3, term: 2, reject: true }])
  })

  it('a vote survives a restart: the restarted voter still rejects a second candidate in that term', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    const term = c.core(1).status().term
    expect(c.core(2).status().vote).toBe(1)
    c.crash(2)
    c.restart(2)
    expect(c.core(2).status()).toMatchObject({ term, vote: 1 })
    c.core(2).step(voteRequest(3, 2, term, { index: 100, term }))
    expect(drainMessages(c.core(2))).toEqual([{ type: 'voteResp', from: 2, to: 3, term, reject: true }])
  })
})

describe('§5.4.1 election restriction', () => {
  // The voter's log ends at index 5 with term 2 (bootstrap entries 1..3 at term 1, then 2, 2).
  const voterState = bootstrapStateWithTail([1, 2, 3], [2, 2])
  const cases = [
    { lastTerm: 3, lastIndex: 4, granted: true, why: 'a higher last term, even with a shorter log' },
    { lastTerm: 2, lastIndex: 6, granted: true, why: 'the same last term and a longer log' },
    { lastTerm: 2, lastIndex: 5, granted: true, why: 'the same last term and length' },
    { lastTerm: 2, lastIndex: 4, granted: false, why: 'the same last term and a shorter log' },
    { lastTerm: 1, lastIndex: 9, granted: false, why: 'a lower last term, even with a longer log' },
  ]

  it.each(titled(cases, (c) => `vote: granted=${c.granted} for a candidate with ${c.why}`))(
    '%s',
    (_, { lastTerm, lastIndex, granted }) => {
      const voter = makeCore(2, voterState)
      voter.step(voteRequest(1, 2, 3, { index: lastIndex, term: lastTerm }))
      expect(drainMessages(voter)).toEqual([{ type: 'voteResp', from: 2, to: 1, term: 3, reject: !granted }])
      // A real vote request of a higher term moves the voter to that term either way.
      expect(voter.status()).toMatchObject({ term: 3, vote: granted ? 1 : 0 })
    },
  )

  it.each(titled(cases, (c) => `preVote: granted=${c.granted} for a candidate with ${c.why}`))(
    '%s',
    (_, { lastTerm, lastIndex, granted }) => {
      const voter = makeCore(2, voterState)
      voter.step(voteRequest(1, 2, 3, { index: lastIndex, term: lastTerm }, { type: 'preVote' }))
      // A granted pre-vote answers in the candidate's future term; a rejection in the voter's own.
      expect(drainMessages(voter)).toEqual([
        { type: 'preVoteResp', from: 2, to: 1, term: granted ? 3 : 2, reject: !granted },
      ])
      expect(voter.status()).toMatchObject({ term: 2, vote: 0 })
    },
  )
})

describe('§5.1 terms', () => {
  type Setup = (core: RaftCore) => void
  const campaign: Setup = (core) => {
    core.campaign()
    drain(core)
  }
  const roles: { role: Role; preVote: boolean; setup: Setup }[] = [
    { role: 'follower', preVote: true, setup: () => {} },
    { role: 'preCandidate', preVote: true, setup: campaign },
    { role: 'candidate', preVote: false, setup: campaign },
    { role: 'leader', preVote: true, setup: (core) => electAlone(core, [2]) },
  ]
  const messages: { name: string; message: Message; leader: NodeId }[] = [
    { name: 'heartbeat', message: heartbeat(3, 1, 9), leader: 3 },
    {
      name: 'append',
      message: { type: 'app', from: 3, to: 1, term: 9, index: 3, logTerm: 1, entries: [], commit: 3 },
      leader: 3,
    },
    {
      name: 'append response',
      message: {
        type: 'appResp',
        from: 3,
        to: 1,
        term: 9,
        index: 0,
        reject: false,
        rejectHint: 0,
        logTerm: 0,
      },
      leader: 0,
    },
    {
      name: 'vote rejection',
      message: { type: 'voteResp', from: 3, to: 1, term: 9, reject: true },
      leader: 0,
    },
  ]
  const cases = roles.flatMap((r) => messages.map((m) => ({ ...r, ...m })))

  it.each(
    titled(
      cases,
      (c) => `a ${c.role} that receives a ${c.name} of a higher term becomes a follower of that term`,
    ),
  )('%s', (_, c) => {
    const core = makeCore(1, bootstrapState([1, 2, 3]), { preVote: c.preVote })
    c.setup(core)
    expect(core.status().role).toBe(c.role)
    core.step(c.message)
    expect(core.status()).toMatchObject({ role: 'follower', term: 9, leader: c.leader, vote: 0 })
  })

  it('§5.2 a candidate that hears from a leader of its own term becomes its follower', () => {
    const core = makeCore(1, bootstrapState([1, 2, 3]), { preVote: false })
    core.campaign()
    drain(core)
    core.step(heartbeat(2, 1, 2, 3))
    expect(core.status()).toMatchObject({ role: 'follower', term: 2, leader: 2, vote: 1 })
  })

  // A follower at term 5; node 1 still believes it leads at term 3.
  const staleCases: {
    name: string
    message: Message
    options?: { checkQuorum: boolean; preVote: boolean }
    reply: Message[]
  }[] = [
    {
      name: 'a stale heartbeat is answered with the newer term, so its leader steps down',
      message: heartbeat(1, 2, 3, 3),
      reply: [
        { type: 'appResp', from: 2, to: 1, term: 5, index: 0, reject: false, rejectHint: 0, logTerm: 0 },
      ],
    },
    {
      name: 'a stale append is answered with the newer term and appends nothing',
      message: {
        type: 'app',
        from: 1,
        to: 2,
        term: 3,
        index: 3,
        logTerm: 1,
        entries: [{ index: 4, term: 3, type: 'normal', data: new Uint8Array(0) }],
        commit: 4,
      },
      reply: [
        { type: 'appResp', from: 2, to: 1, term: 5, index: 0, reject: false, rejectHint: 0, logTerm: 0 },
      ],
    },
    {
      name: 'a stale append is dropped silently when neither CheckQuorum nor PreVote is on (as in etcd)',
      message: heartbeat(1, 2, 3, 3),
      options: { checkQuorum: false, preVote: false },
      reply: [],
    },
    {
      name: 'a stale vote request is ignored',
      message: voteRequest(1, 2, 3, { index: 9, term: 3 }),
      reply: [],
    },
    {
      name: 'a stale preVote is rejected in the newer term',
      message: voteRequest(1, 2, 4, { index: 9, term: 3 }, { type: 'preVote' }),
      reply: [{ type: 'preVoteResp', from: 2, to: 1, term: 5, reject: true }],
    },
    {
      name: 'a stale vote response is ignored',
      message: { type: 'voteResp', from: 1, to: 2, term: 3, reject: false },
      reply: [],
    },
  ]

  it.each(titled(staleCases, (c) => `§5.1 ${c.name}`))('%s', (_, { message, options, reply }) => {
    const core = makeCore(2, bootstrapStateWithTail([1, 2, 3], [], { term: 5 }), options ?? {})
    core.step(message)
    expect(drainMessages(core)).toEqual(reply)
    expect(core.status()).toMatchObject({
      role: 'follower',
      term: 5,
      vote: 0,
      leader: 0,
      commit: 3,
      lastIndex: 3,
    })
  })

  it('§5.1 a leader cut off while the others elected a newer one steps down on the first answer it gets', () => {
    const c = new TestCluster([1, 2, 3], { checkQuorum: false })
    c.elect(1)
    const oldTerm = c.core(1).status().term
    c.isolate(1)
    c.tick(4 * electionTicks)
    const newLeader = c.leader() as NodeId
    expect([2, 3]).toContain(newLeader)
    expect(c.core(1).status()).toMatchObject({ role: 'leader', term: oldTerm })
    const newTerm = c.core(newLeader).status().term
    expect(newTerm).toBeGreaterThan(oldTerm)

    // The stale leader can reach only the other follower, whose answer carries the newer term.
    c.heal()
    c.cut(1, newLeader)
    c.tick(1)
    expect(c.core(1).status()).toMatchObject({ role: 'follower', term: newTerm })
  })
})

describe('§9.6 PreVote', () => {
  it('an isolated node never bumps its term, and rejoining does not disrupt the leader', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    const term = c.core(1).status().term
    c.isolate(3)
    c.tick(10 * electionTicks)
    expect(c.core(3).status().term).toBe(term)
    expect(c.core(3).status().role).not.toBe('leader')

    c.heal()
    c.tick(3 * electionTicks)
    expect(c.leader()).toBe(1)
    for (const id of [1, 2, 3]) expect(c.core(id).status()).toMatchObject({ term, leader: 1 })
  })

  it('without PreVote (and CheckQuorum) the same isolation bumps the term and the rejoin deposes the leader', () => {
    const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false })
    c.elect(1)
    const term = c.core(1).status().term
    c.isolate(3)
    c.tick(10 * electionTicks)
    expect(c.core(3).status().term).toBeGreaterThan(term + 1)
    c.heal()
    c.tick(2 * electionTicks) // node 3's next campaign reaches the leader
    expect(c.core(1).status().term).toBeGreaterThan(term)
  })
})

describe('§9.6 CheckQuorum and the leader lease', () => {
  it('an isolated leader steps down within two election timeouts', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.isolate(1)
    c.tick(2 * electionTicks)
    expect(c.core(1).status()).toMatchObject({ role: 'follower', leader: 0 })
    c.tick(2 * electionTicks)
    expect([2, 3]).toContain(c.leader())
  })

  it('a leader that hears from a quorum keeps leading, however long it runs', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    const term = c.core(1).status().term
    c.isolate(3)
    c.tick(20 * electionTicks)
    expect(c.core(1).status()).toMatchObject({ role: 'leader', term })
  })

  // A follower that heard from leader 1 at term 2 a moment ago.
  function followerOfLeader1(): RaftCore {
    const core = makeCore(2)
    core.step(heartbeat(1, 2, 2, 3))
    drain(core)
    return core
  }

  it.each(
    titled(
      [
        {
          name: 'a vote request is ignored while it hears from a leader',
          type: 'vote',
          force: false,
          reply: [],
        },
        {
          name: 'a preVote request is ignored while it hears from a leader',
          type: 'preVote',
          force: false,
          reply: [],
        },
        {
          name: "a transfer's forced vote request overrides the lease",
          type: 'vote',
          force: true,
          reply: [{ type: 'voteResp', from: 2, to: 3, term: 3, reject: false }],
        },
      ] as const,
      (c) => `${c.name}`,
    ),
  )('%s', (_, { type, force, reply }) => {
    const core = followerOfLeader1()
    core.step(voteRequest(3, 2, 3, { index: 3, term: 1 }, { type, force }))
    expect(drainMessages(core)).toEqual(reply)
    expect(core.status().term).toBe(force ? 3 : 2)
  })

  it('the lease ends an election timeout after the leader was last heard from', () => {
    const core = followerOfLeader1()
    for (let i = 0; i < electionTicks; i++) core.tick()
    drain(core)
    core.step(voteRequest(3, 2, 3, { index: 3, term: 1 }))
    expect(drainMessages(core)).toEqual([{ type: 'voteResp', from: 2, to: 3, term: 3, reject: false }])
  })

  it('without CheckQuorum there is no lease: a vote request of a higher term is answered at once', () => {
    const core = makeCore(2, bootstrapState([1, 2, 3]), { checkQuorum: false })
    core.step(heartbeat(1, 2, 2, 3))
    drain(core)
    core.step(voteRequest(3, 2, 3, { index: 3, term: 1 }))
    expect(drainMessages(core)).toEqual([{ type: 'voteResp', from: 2, to: 3, term: 3, reject: false }])
  })
})

describe('campaigning with unapplied membership changes', () => {
  /** Voters 1..3 from a snapshot at 3, then entry 4 (committed, not applied) of the given kind. */
  function stateWithCommittedEntry(kind: 'conf' | 'normal'): PersistedState {
    return {
      hardState: { term: 2, vote: 0, commit: 4 },
      snapshot: {
        meta: { index: 3, term: 1, confState: { voters: [1, 2, 3], learners: [] } },
        data: new Uint8Array(0),
      },
      logStart: { index: 3, term: 1 },
      entries: [
        kind === 'conf'
          ? {
              index: 4,
              term: 2,
              type: 'conf',
              data: new Uint8Array(0),
              change: { type: 'addLearner', nodeId: 4 },
            }
          : { index: 4, term: 2, type: 'normal', data: new Uint8Array(1) },
      ],
    }
  }

  it('a node does not campaign while a committed membership change is unapplied, and does once it is applied', () => {
    const core = new RaftCore(makeRaftConfig({ id: 1, prng: new Prng(1) }), stateWithCommittedEntry('conf'))
    core.campaign()
    for (let i = 0; i < 3 * electionTicks; i++) core.tick()
    expect(core.status().role).toBe('follower')
    const rd = core.ready()
    expect(rd.messages).toEqual([])
    expect(rd.committedEntries.map((e) => e.index)).toEqual([4])
    core.advance(rd)
    expect(core.status().confState).toEqual({ voters: [1, 2, 3], learners: [4] })
    core.campaign()
    expect(core.status().role).toBe('preCandidate')
  })

  it('an unapplied normal entry does not hold a campaign back', () => {
    const core = new RaftCore(makeRaftConfig({ id: 1, prng: new Prng(1) }), stateWithCommittedEntry('normal'))
    core.campaign()
    expect(core.status().role).toBe('preCandidate')
  })
})

describe('§5.2 only a granted vote restarts the election timer', () => {
  it('a follower that rejects a stale candidate adopts its term but keeps counting toward its own timeout', () => {
    // Node 1 has a longer log than candidate 3, so it rejects 3 (§5.4.1) but adopts term 5.
    const core = makeCore(1, bootstrapStateWithTail([1, 2, 3], [1, 1]), {
      preVote: false,
      checkQuorum: false,
    })
    let ticks = 0
    for (; ticks < electionTicks - 1; ticks++) core.tick()
    drain(core)
    core.step(voteRequest(3, 1, 5, { index: 3, term: 1 }))
    const reply = drainMessages(core).find((m) => m.type === 'voteResp')
    expect(reply).toMatchObject({ reject: true, term: 5 })
    expect(core.status()).toMatchObject({ role: 'follower', term: 5, vote: 0 })
    // Had the rejection reset the timer, a full timeout (>= electionTicks) would be needed again.
    let campaigned = false
    for (let i = 0; i < electionTicks + 1 && !campaigned; i++) {
      core.tick()
      campaigned = drainMessages(core).some((m) => m.type === 'vote')
    }
    expect(campaigned).toBe(true)
  })

  it('granting a vote restarts the timer', () => {
    const core = makeCore(1, bootstrapState([1, 2, 3]), { preVote: false, checkQuorum: false })
    for (let i = 0; i < electionTicks - 1; i++) core.tick()
    drain(core)
    core.step(voteRequest(3, 1, 5, { index: 3, term: 1 }))
    expect(drainMessages(core).find((m) => m.type === 'voteResp')).toMatchObject({ reject: false })
    for (let i = 0; i < electionTicks - 1; i++) core.tick()
    expect(drainMessages(core).some((m) => m.type === 'vote')).toBe(false)
  })
})

describe('a leader whose process is down (reportPeerDown)', () => {
  /** Crashes leader `leader` and tells every surviving member, as their refused dials would. */
  function leaderDies(c: TestCluster, leader: NodeId): void {
    c.crash(leader)
    for (const [id, node] of c.nodes) if (id !== leader && node.up) node.core.reportPeerDown(leader)
    c.process()
  }

  /** Ticks until a leader other than `dead` is up; returns the ticks it took and the winner. */
  function ticksToNewLeader(c: TestCluster, dead: NodeId, max: number): { ticks: number; leader: NodeId } {
    for (let ticks = 1; ticks <= max; ticks++) {
      c.tick()
      const leader = c.leader()
      if (leader !== undefined && leader !== dead) return { ticks, leader }
    }
    throw new Error(`no new leader within ${max} ticks`)
  }

  it('the survivors elect the lowest id in one tick, and its term is the only new one', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const c = new TestCluster([1, 2, 3, 4, 5], {}, seed)
      c.elect(3)
      const term = c.core(3).status().term
      leaderDies(c, 3)
      for (const id of [1, 2, 4, 5]) expect(c.core(id).status().leader).toBe(0)
      expect(ticksToNewLeader(c, 3, 2)).toEqual({ ticks: 1, leader: 1 })
      for (const id of [1, 2, 4, 5]) expect(c.core(id).status()).toMatchObject({ term: term + 1, leader: 1 })
    }
  })

  it('without the report the same cluster waits out a whole election timeout', () => {
    const c = new TestCluster([1, 2, 3, 4, 5], {}, 1)
    c.elect(3)
    c.crash(3)
    expect(ticksToNewLeader(c, 3, 4 * electionTicks).ticks).toBeGreaterThanOrEqual(electionTicks)
  })

  it('with campaignWhenLeaderDown off the report changes nothing', () => {
    const c = new TestCluster([1, 2, 3], { campaignWhenLeaderDown: false }, 1)
    c.elect(1)
    leaderDies(c, 1)
    expect(c.core(2).status().leader).toBe(1)
    expect(ticksToNewLeader(c, 1, 4 * electionTicks).ticks).toBeGreaterThanOrEqual(electionTicks)
  })

  it('when the lowest id lacks entries the others have, the next id wins a tick later', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(3)
    c.cut(3, 1)
    c.core(3).propose(new Uint8Array([7]))
    c.process()
    expect(c.core(2).status().lastIndex).toBeGreaterThan(c.core(1).status().lastIndex)
    c.heal()
    leaderDies(c, 3)
    expect(ticksToNewLeader(c, 3, 3)).toEqual({ ticks: 2, leader: 2 })
    expect(c.core(1).status().leader).toBe(2)
  })

  it('a survivor that has not heard of the death yet only delays the election until it does', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(3)
    c.crash(3)
    c.core(1).reportPeerDown(3)
    c.process()
    const term = c.core(2).status().term
    c.tick(3) // 1's pre-vote is ignored: 2 still holds its lease on 3
    expect(c.leader()).toBeUndefined()
    expect(c.core(2).status()).toMatchObject({ term, leader: 3 })
    c.core(2).reportPeerDown(3)
    c.process()
    expect(ticksToNewLeader(c, 3, 3).leader).toBe(2)
  })

  it('a wrong report about a live leader costs no term and no leader change', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(3)
    const term = c.core(3).status().term
    c.core(1).reportPeerDown(3)
    c.process()
    c.tick(3 * electionTicks)
    for (const id of [1, 2, 3]) expect(c.core(id).status()).toMatchObject({ term, leader: 3 })
  })

  it('a report about a follower, or to a leader or a candidate, is ignored', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(3)
    const term = c.core(3).status().term
    c.core(1).reportPeerDown(2)
    c.core(3).reportPeerDown(1)
    c.core(3).reportPeerDown(3)
    c.process()
    expect(c.core(1).status().leader).toBe(3)
    expect(c.core(3).status()).toMatchObject({ role: 'leader', term })
    const candidate = makeCore(2)
    candidate.campaign()
    drain(candidate)
    candidate.reportPeerDown(1)
    expect(candidate.status().role).toBe('preCandidate')
  })
})
