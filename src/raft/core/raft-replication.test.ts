/**
 * Proves log replication (Raft paper §5.3, §5.4.2) and the leader's flow control: the term's first
 * entry is an empty no-op, §5.3 log matching and conflict truncation on the follower, fast
 * backtracking over long divergent tails, the figure 8 commit rule, quorum commit, commit on
 * heartbeats bounded by match, appendBytesMax batching, the in-flight window, probe pacing, and that
 * the leader counts its own copy only once it is persisted.
 */
import { describe, expect, it } from 'vitest'
import { bootstrapState } from './bootstrap.ts'
import type { PlantedBug } from './config.ts'
import { entryBytes } from './log.ts'
import {
  bootstrapStateWithTail,
  drain,
  drainMessages,
  electAlone,
  makeCore,
  TestCluster,
  titled,
} from './test-cluster.ts'
import type { AppendMessage, Entry, Message, NodeId } from './types.ts'

const encoder = new TextEncoder()
const bytes = (text: string): Uint8Array => encoder.encode(text)

/** A follower's acknowledgement of everything up to `index` (leaders here are at term 2). */
function ack(from: NodeId, index: number, term = 2): Message {
  return { type: 'appResp', from, to: 1, term, index, reject: false, rejectHint: 0, logTerm: 0 }
}

function appendsTo(messages: Message[], to: NodeId): AppendMessage[] {
  return messages.filter((m): m is AppendMessage => m.type === 'app' && m.to === to)
}

function append(term: number, prev: [number, number], entries: [number, number][], commit: number): Message {
  return {
    type: 'app',
    from: 1,
    to: 2,
    term,
    index: prev[0],
    logTerm: prev[1],
    entries: entries.map(
      ([index, t]): Entry => ({ index, term: t, type: 'normal', data: new Uint8Array(0) }),
    ),
    commit,
  }
}

function termsOf(core: { logEntries(lo: number, hi: number): Entry[] }, last: number): number[] {
  return core.logEntries(1, last + 1).map((e) => e.term)
}

describe('§5.4.2 the leader’s first entry', () => {
  it('a new leader appends an empty no-op in its term, and every node commits and applies it', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    const { term, lastIndex } = c.core(1).status()
    expect(c.core(1).logEntries(lastIndex, lastIndex + 1)).toEqual([
      { index: 4, term, type: 'normal', data: new Uint8Array(0) },
    ])
    for (const id of [1, 2, 3]) {
      expect(c.core(id).status()).toMatchObject({ commit: 4, applied: 4 })
      expect(c.node(id).applied.map((e) => e.index)).toEqual([1, 2, 3, 4])
    }
  })
})

describe('hasUnsaved', () => {
  it('is true from a proposal until the Ready that carries it is advanced, and a read never sets it', () => {
    const core = makeCore(1)
    electAlone(core, [2, 3])
    expect(core.hasUnsaved()).toBe(false)
    core.readIndex('r1')
    expect(core.hasUnsaved()).toBe(false)
    drain(core)
    core.propose(bytes('x'))
    expect(core.hasUnsaved()).toBe(true)
    const rd = core.ready()
    expect(rd.entries).toHaveLength(1)
    core.advance(rd)
    expect(core.hasUnsaved()).toBe(false)
  })
})

describe('§5.3 log matching on the follower', () => {
  // The follower holds the bootstrap entries 1..3 at term 1.
  it.each(
    titled(
      [
        {
          name: 'rejects an append whose previous entry has another term, hinting its own last entry',
          message: append(2, [3, 2], [[4, 2]], 3),
          reply: { index: 3, reject: true, rejectHint: 3, logTerm: 1 },
          lastIndex: 3,
        },
        {
          name: 'rejects an append whose previous entry is beyond its log, hinting its last index',
          message: append(2, [5, 1], [[6, 2]], 3),
          reply: { index: 5, reject: true, rejectHint: 3, logTerm: 1 },
          lastIndex: 3,
        },
        {
          name: 'accepts an append whose previous entry matches and acknowledges the last new index',
          message: append(2, [3, 1], [[4, 2]], 3),
          reply: { index: 4, reject: false, rejectHint: 0, logTerm: 0 },
          lastIndex: 4,
        },
      ],
      (c) => `§5.3 a follower ${c.name}`,
    ),
  )('%s', (_, { message, reply, lastIndex }) => {
    const follower = makeCore(2)
    follower.step(message)
    expect(drainMessages(follower)).toEqual([{ type: 'appResp', from: 2, to: 1, term: 2, ...reply }])
    expect(follower.status().lastIndex).toBe(lastIndex)
  })

  it('§5.3 conflicting entries are truncated and replaced; the Ready rewrites from the conflict', () => {
    // Entries 4 and 5 of term 2 were never committed; the term 3 leader has a different entry 4.
    const follower = makeCore(2, bootstrapStateWithTail([1, 2, 3], [2, 2]))
    follower.step(append(3, [3, 1], [[4, 3]], 3))
    const rd = follower.ready()
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([[4, 3]])
    expect(rd.messages).toEqual([
      { type: 'appResp', from: 2, to: 1, term: 3, index: 4, reject: false, rejectHint: 0, logTerm: 0 },
    ])
    follower.advance(rd)
    expect(termsOf(follower, 5)).toEqual([1, 1, 1, 3])
  })

  it('§5.3 an append behind the commit index is answered with the commit index and changes nothing', () => {
    const follower = makeCore(2, bootstrapStateWithTail([1, 2, 3], [2, 2], { commit: 5 }))
    follower.step(append(2, [3, 1], [[4, 2]], 5))
    expect(drainMessages(follower)).toEqual([
      { type: 'appResp', from: 2, to: 1, term: 2, index: 5, reject: false, rejectHint: 0, logTerm: 0 },
    ])
    expect(follower.status().lastIndex).toBe(5)
  })
})

describe('fast backtracking', () => {
  const repeat = (term: number, count: number): number[] => Array.from({ length: count }, () => term)
  const cases = [
    {
      name: '50 stale term-2 entries, the leader has 5 entries of term 3',
      leaderTail: repeat(3, 5),
      followerTail: repeat(2, 50),
    },
    {
      name: '50 entries over five stale terms, matching the leader for the first 5',
      leaderTail: [...repeat(2, 5), ...repeat(7, 5)],
      followerTail: [2, 3, 4, 5, 6].flatMap((term) => repeat(term, 10)),
    },
    {
      name: '50 entries of term 3, the leader has 60 entries of the older term 2 (won with the other vote)',
      leaderTail: repeat(2, 60),
      followerTail: repeat(3, 50),
    },
    { name: 'only the bootstrap entries, 50 behind the leader', leaderTail: repeat(2, 50), followerTail: [] },
  ]

  // Without the hints each of these would take one rejection per missing or divergent entry (50+).
  it.each(titled(cases, (c) => `a follower with ${c.name} converges after a single rejection`))(
    '%s',
    (_, { leaderTail, followerTail }) => {
      const c = new TestCluster([])
      c.addNode(1, bootstrapStateWithTail([1, 2, 3], leaderTail, { term: 10 }))
      c.addNode(2, bootstrapStateWithTail([1, 2, 3], leaderTail, { term: 10 }))
      c.addNode(3, bootstrapStateWithTail([1, 2, 3], followerTail, { term: 10 }))
      c.process()
      c.recordDelivered = true
      c.elect(1)
      expect(c.leader()).toBe(1)

      const rejections = c.delivered.filter((m) => m.type === 'appResp' && m.from === 3 && m.reject)
      expect(rejections).toHaveLength(1)
      const last = c.core(1).status().lastIndex
      expect(c.core(3).status()).toMatchObject({ lastIndex: last, commit: last })
      expect(termsOf(c.core(3), last)).toEqual(termsOf(c.core(1), last))
    },
  )
})

describe('§5.4.2 committing entries from previous terms (figure 8)', () => {
  // Node 1 holds entry 4 from term 2 that was never committed; it wins term 3 and appends its no-op
  // at 5. Follower 2 then acknowledges up to 4, so a majority (1, 2) holds the old-term entry 4.
  it.each(
    titled(
      [
        { bugs: [], commitAfterOldAck: 3 },
        { bugs: ['commitOldTermByCount'], commitAfterOldAck: 4 },
      ] as { bugs: PlantedBug[]; commitAfterOldAck: number }[],
      (c) =>
        c.bugs.length === 0
          ? '§5.4.2 a leader does not commit an older-term entry by counting replicas, only once an entry of its own term is on a majority'
          : 'with the planted bug commitOldTermByCount the same steps commit the old entry (the test can fail)',
    ),
  )('%s', (_, { bugs, commitAfterOldAck }) => {
    const leader = makeCore(1, bootstrapStateWithTail([1, 2, 3], [2]), { plantedBugs: new Set(bugs) })
    electAlone(leader, [2])
    expect(leader.status()).toMatchObject({ term: 3, lastIndex: 5, commit: 3 })

    leader.step(ack(2, 4, 3))
    drain(leader)
    expect(leader.status().commit).toBe(commitAfterOldAck)

    leader.step(ack(2, 5, 3))
    drain(leader)
    expect(leader.status().commit).toBe(5)
  })
})

describe('§5.3 commit needs a quorum', () => {
  it.each(
    titled(
      [
        { size: 3, cut: [], commits: true },
        { size: 3, cut: [3], commits: true },
        { size: 3, cut: [2, 3], commits: false },
        { size: 5, cut: [4, 5], commits: true },
        { size: 5, cut: [3, 4, 5], commits: false },
      ],
      (c) =>
        `§5.3 of ${c.size} nodes, with the leader cut from [${c.cut.join(', ')}], a proposal ${c.commits ? 'commits' : 'does not commit'}`,
    ),
  )('%s', (_, { size, cut, commits }) => {
    const ids = Array.from({ length: size }, (_, i) => i + 1)
    const c = new TestCluster(ids)
    c.elect(1)
    for (const id of cut) c.cut(1, id)
    const before = c.core(1).status().commit
    c.core(1).propose(bytes('x'))
    c.process()
    expect(c.core(1).status().commit).toBe(commits ? before + 1 : before)
    const applied = (id: NodeId) => c.node(id).applied.some((e) => e.data.byteLength === 1)
    expect(applied(1)).toBe(commits)
    for (const id of cut) expect(applied(id)).toBe(false)
  })

  it('a proposal made on a follower is forwarded to the leader and committed everywhere', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.core(3).propose(bytes('from 3'))
    c.process()
    for (const id of [1, 2, 3]) {
      const last = c.node(id).applied.at(-1)
      expect(new TextDecoder().decode(last?.data)).toBe('from 3')
    }
  })
})

describe('heartbeats', () => {
  it('carry the commit index, bounded by what each follower is known to hold', () => {
    const leader = makeCore(1)
    electAlone(leader, [2])
    leader.step(ack(2, 4))
    leader.step(ack(3, 4))
    drain(leader)
    leader.propose(bytes('a'))
    drain(leader)
    leader.step(ack(2, 5)) // 3 has not acknowledged entry 5
    drain(leader)
    expect(leader.status().commit).toBe(5)

    leader.tick()
    const heartbeats = drainMessages(leader).filter((m) => m.type === 'heartbeat')
    expect(heartbeats.map((m) => (m.type === 'heartbeat' ? [m.to, m.commit] : []))).toEqual([
      [2, 5],
      [3, 4],
    ])
  })

  it('a follower learns the commit index from a heartbeat', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.ignore('heartbeat')
    c.drop((m) => m.type === 'app' && m.to === 3 && m.entries.length === 0) // no empty append re-sends commit
    c.core(1).propose(bytes('x'))
    c.process()
    const commit = c.core(1).status().commit
    expect(c.core(3).status().commit).toBe(commit - 1)
    c.heal()
    c.tick(1)
    expect(c.core(3).status().commit).toBe(commit)
  })
})

describe('commit notices', () => {
  it('a committed write reaches each caught-up follower as a commitOnly append, which it applies and does not answer', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.ignore('heartbeat')
    c.recordDelivered = true
    c.core(1).propose(bytes('x'))
    c.process()
    const commit = c.core(1).status().commit
    for (const id of [1, 2, 3]) expect(c.core(id).status()).toMatchObject({ commit, applied: commit })
    const apps = c.delivered.filter((m): m is AppendMessage => m.type === 'app')
    // The commit moved on 2's answer: the leader knew 2 held the entry, not yet 3, whose notice is
    // an ordinary empty append and is answered.
    expect(apps.map((m) => [m.to, m.entries.length, m.commitOnly === true])).toEqual([
      [2, 1, false],
      [3, 1, false],
      [2, 0, true],
      [3, 0, false],
    ])
    const answers = c.delivered.filter((m) => m.type === 'appResp')
    expect(answers.map((m) => [m.from, m.type === 'appResp' ? m.index : 0])).toEqual([
      [2, commit],
      [3, commit],
      [3, commit],
    ])
  })

  it('an empty append without the mark is answered as before (a leader that does not know the match)', () => {
    const follower = makeCore(2)
    follower.step(append(2, [3, 1], [], 3))
    expect(drainMessages(follower)).toEqual([
      { type: 'appResp', from: 2, to: 1, term: 2, index: 3, reject: false, rejectHint: 0, logTerm: 0 },
    ])
  })

  it('a commit notice the follower rejects is answered with the rejection', () => {
    const follower = makeCore(2) // holds 1..3 at term 1
    follower.step({ ...append(2, [5, 2], [], 3), commitOnly: true } as Message)
    expect(drainMessages(follower)).toEqual([
      { type: 'appResp', from: 2, to: 1, term: 2, index: 5, reject: true, rejectHint: 3, logTerm: 1 },
    ])
    // Accepted, it moves the commit index and is not answered.
    follower.step({ ...append(2, [3, 1], [], 3), commitOnly: true } as Message)
    expect(drainMessages(follower)).toEqual([])
    expect(follower.status().commit).toBe(3)
  })
})

describe('flow control', () => {
  it('appendBytesMax splits a backlog into appends of at most that many bytes (one bigger entry goes alone)', () => {
    const leader = makeCore(1, bootstrapState([1, 2, 3]), { appendBytesMax: 300 })
    electAlone(leader, [2]) // follower 3 is probed with the no-op and stays paused until it answers
    for (let i = 0; i < 10; i++) {
      leader.propose(new Uint8Array(100)) // 124 bytes each with the overhead: two fit in 300
      drain(leader)
    }
    leader.propose(new Uint8Array(1_000))
    drain(leader)
    leader.propose(new Uint8Array(100))
    leader.propose(new Uint8Array(100))
    drain(leader)

    leader.step(ack(3, 4))
    const appends = appendsTo(drainMessages(leader), 3)
    for (const m of appends) {
      const size = m.entries.reduce((sum, e) => sum + entryBytes(e), 0)
      if (m.entries.length > 1) expect(size).toBeLessThanOrEqual(300)
    }
    expect(appends.map((m) => m.entries.length)).toEqual([2, 2, 2, 2, 2, 1, 2])
    expect(appends.flatMap((m) => m.entries.map((e) => e.index))).toEqual(
      Array.from({ length: 13 }, (_, i) => 5 + i),
    )
  })

  it('with a follower that never answers, at most inflightMsgsMax appends are outstanding', () => {
    const leader = makeCore(1, bootstrapState([1, 2, 3]), { inflightMsgsMax: 3 })
    electAlone(leader, [2])
    leader.step(ack(3, 4)) // follower 3 answers once, moving to replicate, then goes silent
    drain(leader)
    let sent = 0
    for (let i = 0; i < 10; i++) {
      leader.propose(bytes(`e${i}`))
      sent += appendsTo(drainMessages(leader), 3).length
    }
    expect(sent).toBe(3)
    for (let i = 0; i < 5; i++) {
      leader.tick()
      sent += appendsTo(drainMessages(leader), 3).length
    }
    expect(sent).toBe(3)
    expect(leader.status().progress?.get(3)).toMatchObject({ state: 'replicate', match: 4, next: 8 })

    // An acknowledgement opens the window again, and the rest goes out.
    leader.step(ack(3, 7))
    const resumed = appendsTo(drainMessages(leader), 3)
    expect(resumed.flatMap((m) => m.entries.map((e) => e.index))).toEqual([8, 9, 10, 11, 12, 13, 14])
  })

  it('in probe state the leader sends one append per heartbeat response until the follower answers', () => {
    const leader = makeCore(1)
    const first = electAlone(leader, [2])
    expect(appendsTo(first, 3)).toHaveLength(1) // the probe carrying the no-op
    for (let i = 0; i < 3; i++) {
      leader.propose(bytes(`p${i}`))
      expect(appendsTo(drainMessages(leader), 3)).toHaveLength(0)
    }
    leader.tick()
    expect(appendsTo(drainMessages(leader), 3)).toHaveLength(0) // a heartbeat goes out, no append

    const heartbeatResp: Message = { type: 'heartbeatResp', from: 3, to: 1, term: 2, readRound: 0 }
    leader.step(heartbeatResp)
    const probe = appendsTo(drainMessages(leader), 3)
    expect(probe.map((m) => [m.index, m.entries.length])).toEqual([[3, 4]])
    leader.propose(bytes('p3'))
    expect(appendsTo(drainMessages(leader), 3)).toHaveLength(0)
    leader.step(heartbeatResp)
    expect(appendsTo(drainMessages(leader), 3)).toHaveLength(1)

    leader.step(ack(3, 8)) // the follower answers: replicate, one append per Ready with new entries
    drain(leader)
    expect(leader.status().progress?.get(3)?.state).toBe('replicate')
    leader.propose(bytes('p4'))
    expect(appendsTo(drainMessages(leader), 3).map((m) => m.entries.map((e) => e.index))).toEqual([[9]])
  })

  it('a Ready carries at most one append per follower, even when an acknowledgement moved the commit meanwhile', () => {
    const leader = makeCore(1)
    electAlone(leader, [2, 3])
    leader.step(ack(2, 4))
    leader.step(ack(3, 4))
    drain(leader)
    leader.propose(bytes('a')) // 5
    drain(leader)
    leader.propose(bytes('b')) // 6
    leader.step(ack(2, 5)) // commits 5 before the next Ready is taken
    const rd = leader.ready()
    leader.advance(rd)
    const summary = (to: NodeId) => appendsTo(rd.messages, to).map((m) => m.entries.map((e) => e.index))
    expect(summary(2)).toEqual([[6]])
    expect(summary(3)).toEqual([[6]])
  })

  it('proposals made between two Readies leave in one append per follower', () => {
    const leader = makeCore(1)
    electAlone(leader, [2, 3])
    leader.step(ack(2, 4))
    leader.step(ack(3, 4))
    drain(leader)
    for (let i = 0; i < 5; i++) leader.propose(bytes(`b${i}`))
    const messages = drainMessages(leader)
    expect(appendsTo(messages, 2).map((m) => m.entries.length)).toEqual([5])
    expect(appendsTo(messages, 3).map((m) => m.entries.length)).toEqual([5])
  })
})

describe('the Ready contract', () => {
  it.each(
    titled(
      [
        {
          name: 'a commit-only change (heartbeat)',
          message: { type: 'heartbeat', from: 1, to: 2, term: 1, commit: 3, readRound: 0 } as Message,
          mustSync: false,
        },
        { name: 'new entries', message: append(1, [3, 1], [[4, 1]], 3), mustSync: true },
        {
          name: 'a vote',
          message: {
            type: 'vote',
            from: 1,
            to: 2,
            term: 2,
            lastLogIndex: 3,
            lastLogTerm: 1,
            force: false,
          } as Message,
          mustSync: true,
        },
        {
          name: 'a term change alone (a higher-term heartbeat)',
          message: { type: 'heartbeat', from: 1, to: 2, term: 5, commit: 0, readRound: 0 } as Message,
          mustSync: true,
        },
      ],
      (c) => `mustSync is ${c.mustSync} for a Ready holding ${c.name}`,
    ),
  )('%s', (_, { message, mustSync }) => {
    const follower = makeCore(2, bootstrapStateWithTail([1, 2, 3], [], { commit: 2 }))
    follower.step(message)
    const rd = follower.ready()
    expect(rd.mustSync).toBe(mustSync)
    follower.advance(rd)
  })

  it('ready() twice without advance(), or advance() without ready(), is a programmer error', () => {
    const core = makeCore(1)
    expect(() => core.advance(core.ready())).not.toThrow()
    const rd = core.ready()
    expect(() => core.ready()).toThrow(/before advance/)
    core.advance(rd)
    expect(() => core.advance(rd)).toThrow(/without an outstanding ready/)
  })

  it('a proposal made between ready() and advance() goes out in the next Ready and commits', () => {
    const core = makeCore(1, bootstrapState([1]))
    core.campaign()
    drain(core)
    core.propose(bytes('one'))
    const first = core.ready()
    core.propose(bytes('two')) // while the driver is still persisting the first
    core.advance(first)
    expect(first.entries.map((e) => e.index)).toEqual([3])
    expect(core.status().commit).toBe(3)
    const applied = drain(core).flatMap((rd) => rd.committedEntries.map((e) => e.index))
    expect(applied).toEqual([3, 4])
  })
})

describe('the leader’s own copy', () => {
  it('a single-node cluster commits a proposal only after the Ready that persists it is advanced', () => {
    const core = makeCore(1, bootstrapState([1]))
    core.campaign()
    drain(core)
    expect(core.status()).toMatchObject({ role: 'leader', commit: 2 })

    core.propose(bytes('solo'))
    const rd = core.ready()
    expect(rd.entries.map((e) => e.index)).toEqual([3])
    expect(rd.committedEntries).toEqual([])
    expect(core.status().commit).toBe(2)
    core.advance(rd)
    expect(core.status().commit).toBe(3)

    const next = core.ready()
    expect(next.hardState?.commit).toBe(3)
    expect(next.committedEntries.map((e) => e.index)).toEqual([3])
    core.advance(next)
  })

  it('committedBytesPerReadyMax spreads committed entries over several Readies', () => {
    const core = makeCore(1, bootstrapState([1]), { committedBytesPerReadyMax: 250 })
    core.campaign()
    drain(core)
    for (let i = 0; i < 5; i++) core.propose(new Uint8Array(100))
    const readies = drain(core)
    const batches = readies.map((rd) => rd.committedEntries.length).filter((n) => n > 0)
    expect(batches).toEqual([2, 2, 1])
  })
})
