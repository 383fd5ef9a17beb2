/**
 * Each checker on tiny histories: a good one it must accept and bad ones it must reject with the
 * right invariant. A checker that accepts a bad history would let the simulator pass a broken core;
 * one that rejects a good history would make every run fail.
 */
import { describe, expect, it } from 'vitest'
import type { Entry, HardState, Message, PersistedState, Status } from '../core/types.ts'
import { ApplyChecker } from './checkers/apply.ts'
import { checkCoreRecovered, checkRecovered } from './checkers/durability.ts'
import { ElectionChecker } from './checkers/election.ts'
import { collectFails } from './checkers/fail.ts'
import { LogChecker } from './checkers/log.ts'
import { ReadChecker } from './checkers/reads.ts'
import { combineHash, emptyPrefixHash, entryHash } from './hash.ts'

function entry(index: number, term: number, text = ''): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) }
}

function hs(term: number, vote: number, commit: number): HardState {
  return { term, vote, commit }
}

function state(entries: Entry[], hardState = hs(1, 0, 0)): PersistedState {
  return { hardState, snapshot: undefined, logStart: { index: 0, term: 0 }, entries }
}

function voteResp(from: number, to: number, term: number, reject = false): Message {
  return { type: 'voteResp', from, to, term, reject }
}

function chainOf(entries: Entry[]): number {
  return entries.reduce((h, e) => combineHash(h, entryHash(e)), emptyPrefixHash)
}

describe('ElectionChecker', () => {
  it('accepts one leader per term, the same leader seen twice, and new terms', () => {
    const { fail, seen } = collectFails()
    const c = new ElectionChecker(fail)
    c.leader(1, 1, 'ready')
    c.leader(1, 1, 'sent app')
    c.leader(2, 2, 'ready')
    c.sent({ type: 'heartbeat', from: 3, to: 1, term: 3, commit: 0, readRound: 0 }, hs(3, 3, 0))
    expect(seen).toEqual([])
    expect(c.leaderCount).toBe(3)
  })

  it('rejects two leaders in one term, also when seen through a message', () => {
    const { fail, seen } = collectFails()
    const c = new ElectionChecker(fail)
    c.leader(4, 1, 'ready')
    c.sent(
      { type: 'app', from: 2, to: 1, term: 4, index: 0, logTerm: 0, entries: [], commit: 0 },
      hs(4, 2, 0),
    )
    expect(seen.map((s) => s.invariant)).toEqual(['election-safety'])
  })

  it('accepts a repeated grant to the same candidate and grants in later terms', () => {
    const { fail, seen } = collectFails()
    const c = new ElectionChecker(fail)
    c.sent(voteResp(2, 1, 5), hs(5, 1, 0))
    c.sent(voteResp(2, 1, 5), hs(5, 1, 0))
    c.sent(voteResp(2, 3, 6), hs(6, 3, 0))
    c.sent(voteResp(2, 3, 5, true), hs(6, 3, 0))
    expect(seen).toEqual([])
  })

  it('rejects two grants in one term', () => {
    const { fail, seen } = collectFails()
    const c = new ElectionChecker(fail)
    c.sent(voteResp(2, 1, 5), hs(5, 1, 0))
    c.sent(voteResp(2, 3, 5), hs(5, 3, 0))
    expect(seen.map((s) => s.invariant)).toEqual(['vote-once'])
  })

  it('rejects a grant that is not durable yet, accepts one superseded by a later durable term', () => {
    const { fail, seen } = collectFails()
    const c = new ElectionChecker(fail)
    c.sent(voteResp(2, 1, 5), hs(4, 0, 0))
    expect(seen.map((s) => s.invariant)).toEqual(['vote-once'])
    const ok = collectFails()
    new ElectionChecker(ok.fail).sent(voteResp(2, 1, 5), hs(6, 0, 0))
    expect(ok.seen).toEqual([])
  })

  it('rejects a persisted term going back and a persisted vote changing within a term', () => {
    const { fail, seen } = collectFails()
    const c = new ElectionChecker(fail)
    c.persisted(1, hs(3, 0, 0), hs(3, 2, 0))
    c.persisted(1, hs(3, 2, 0), hs(4, 0, 0))
    expect(seen).toEqual([])
    c.persisted(1, hs(4, 0, 0), hs(2, 0, 0))
    c.persisted(1, hs(4, 2, 0), hs(4, 3, 0))
    expect(seen.map((s) => s.invariant)).toEqual(['monotonicity', 'vote-once'])
  })
})

describe('LogChecker', () => {
  const base = [entry(1, 1), entry(2, 1, 'a'), entry(3, 2, 'b')]

  it('accepts identical logs and a follower truncating an uncommitted suffix', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base))
    c.start(2, state(base.slice(0, 2)))
    c.persist(2, { kind: 'entry', entry: entry(3, 3, 'other') })
    c.persist(2, { kind: 'entry', entry: entry(3, 2, 'b') })
    expect(seen).toEqual([])
    expect(c.shadow(2).lastPrefix).toBe(c.shadow(1).lastPrefix)
  })

  it('rejects the same index and term holding different data', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base))
    c.start(2, state([...base.slice(0, 2), entry(3, 2, 'x')]))
    expect(seen.map((s) => s.invariant)).toEqual(['log-matching'])
  })

  it('rejects the same (index, term) over a different prefix', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base))
    c.start(2, state([entry(1, 1), entry(2, 1, 'z'), entry(3, 2, 'b')]))
    expect(seen.map((s) => s.invariant)).toContain('log-matching')
  })

  it('rejects a gap in persisted entries', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base))
    c.persist(1, { kind: 'entry', entry: entry(5, 2) })
    expect(seen.map((s) => s.invariant)).toEqual(['ready-contract'])
  })

  it('accepts commits that agree; rejects commit going back, beyond the log, or over another log', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base))
    c.start(2, state(base))
    c.commit(1, hs(2, 1, 3))
    c.commit(2, hs(2, 1, 2))
    expect(seen).toEqual([])
    c.commit(1, hs(2, 1, 2))
    c.commit(2, hs(2, 1, 9))
    c.start(3, state([entry(1, 1), entry(2, 2, 'q'), entry(3, 3)]))
    c.commit(3, hs(3, 1, 3))
    expect(seen.map((s) => s.invariant)).toEqual(['monotonicity', 'ready-contract', 'state-machine-safety'])
  })

  it('rejects a node overwriting an entry it had persisted as committed', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base, hs(2, 0, 3)))
    c.persist(1, { kind: 'entry', entry: entry(3, 4, 'new') })
    expect(seen.map((s) => s.invariant)).toEqual(['state-machine-safety'])
  })

  it('leader completeness: later leaders must hold what was committed; older ones need not', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base))
    c.start(2, state(base.slice(0, 2)))
    c.start(3, state([...base.slice(0, 2), entry(3, 3, 'other')]))
    c.commit(1, hs(3, 1, 3)) // index 3 seen committed in term 3
    c.checkLeader(1, 4)
    c.checkLeader(2, 2) // a stale leader of term 2 may lack it
    expect(seen).toEqual([])
    c.checkLeader(2, 4)
    c.checkLeader(3, 5)
    expect(seen.map((s) => s.invariant)).toEqual(['leader-completeness', 'leader-completeness'])
  })

  it('follows snapshots and compaction', () => {
    const { fail, seen } = collectFails()
    const c = new LogChecker(fail)
    c.start(1, state(base))
    c.start(2, state([]))
    c.compacted(1, 2, 3)
    c.persist(2, {
      kind: 'snapshot',
      snapshot: {
        meta: { index: 3, term: 2, confState: { voters: [1], learners: [] } },
        data: new Uint8Array(),
      },
    })
    c.persist(2, { kind: 'entry', entry: entry(4, 2, 'c') })
    c.persist(1, { kind: 'entry', entry: entry(4, 2, 'c') })
    expect(seen).toEqual([])
    expect(c.shadow(2).lastPrefix).toBe(c.shadow(1).lastPrefix)
    expect(c.shadow(2).hardState.commit).toBe(0) // recorded as persisted; the core lifts it to 3 on load
    expect(c.shadow(2).snapshotIndex).toBe(3)
    expect(c.shadow(1).startIndex).toBe(2)
  })
})

describe('ApplyChecker', () => {
  const a = [entry(1, 1), entry(2, 1, 'a')]
  const b = [entry(1, 1), entry(2, 2, 'b')]

  it('accepts nodes applying one history, at different speeds, and snapshots of it', () => {
    const { fail, seen } = collectFails()
    const c = new ApplyChecker(fail)
    c.applied(1, 1, chainOf(a.slice(0, 1)))
    c.applied(1, 2, chainOf(a))
    c.applied(2, 1, chainOf(a.slice(0, 1)))
    c.restored(3, 2, chainOf(a), 0)
    c.acked(2, chainOf(a))
    c.converged(2, 2)
    expect(seen).toEqual([])
  })

  it('rejects two histories at one index', () => {
    const { fail, seen } = collectFails()
    const c = new ApplyChecker(fail)
    c.applied(1, 2, chainOf(a))
    c.applied(2, 2, chainOf(b))
    expect(seen.map((s) => s.invariant)).toEqual(['state-machine-safety'])
  })

  it('names an acknowledged write that another node overwrote', () => {
    const { fail, seen } = collectFails()
    const c = new ApplyChecker(fail)
    c.applied(1, 2, chainOf(a))
    c.acked(2, chainOf(a))
    c.applied(2, 2, chainOf(b))
    expect(seen.map((s) => s.invariant)).toEqual(['acked-write-lost'])
  })

  it('rejects a snapshot of another history, a snapshot going back, and convergence short of an ack', () => {
    const { fail, seen } = collectFails()
    const c = new ApplyChecker(fail)
    c.applied(1, 1, chainOf(a.slice(0, 1)))
    c.applied(1, 2, chainOf(a))
    c.acked(2, chainOf(a))
    c.restored(2, 2, chainOf(b), 0)
    c.restored(3, 1, chainOf(a.slice(0, 1)), 2)
    c.converged(4, 1)
    expect(seen.map((s) => s.invariant)).toEqual(['state-machine-safety', 'monotonicity', 'acked-write-lost'])
  })
})

describe('ReadChecker', () => {
  it('accepts reads answered at or after every write acknowledged before they started', () => {
    const { fail, seen } = collectFails()
    const c = new ReadChecker(fail)
    c.invoked(1, 5)
    c.answered(1, 2, 5)
    c.invoked(2, 5)
    c.answered(2, 3, 9)
    c.answered(77, 3, 0) // unknown reads are ignored
    expect(seen).toEqual([])
  })

  it('rejects a stale read', () => {
    const { fail, seen } = collectFails()
    const c = new ReadChecker(fail)
    c.invoked(1, 5)
    c.answered(1, 2, 4)
    expect(seen.map((s) => s.invariant)).toEqual(['read-linearizability'])
  })
})

describe('durability checks', () => {
  const entries = [entry(1, 1), entry(2, 1, 'a'), entry(3, 2, 'b')]

  function shadowOf(persisted: PersistedState): LogChecker {
    const c = new LogChecker(collectFails().fail)
    c.start(1, persisted)
    return c
  }

  it('accepts a disk that gives back what was persisted', () => {
    const persisted = state(entries, hs(2, 1, 2))
    const { fail, seen } = collectFails()
    checkRecovered(1, shadowOf(persisted).shadow(1), structuredClone(persisted), fail)
    expect(seen).toEqual([])
  })

  it('rejects a lost entry, a lost vote, and a changed entry', () => {
    const persisted = state(entries, hs(2, 1, 2))
    const shadow = shadowOf(persisted).shadow(1)
    const { fail, seen } = collectFails()
    checkRecovered(1, shadow, state(entries.slice(0, 2), hs(2, 1, 2)), fail)
    checkRecovered(1, shadow, state(entries, hs(2, 0, 2)), fail)
    checkRecovered(1, shadow, state([...entries.slice(0, 2), entry(3, 2, 'x')], hs(2, 1, 2)), fail)
    expect(seen.map((s) => s.invariant)).toEqual(['durability', 'durability', 'durability'])
  })

  it('rejects a core that starts from less than its disk', () => {
    const persisted = state(entries, hs(2, 1, 2))
    const status = (over: Partial<Status>): Status => ({
      id: 1,
      term: 2,
      vote: 1,
      role: 'follower',
      leader: 0,
      commit: 2,
      applied: 0,
      lastIndex: 3,
      confState: { voters: [1], learners: [] },
      progress: undefined,
      leadTransferee: 0,
      ...over,
    })
    const { fail, seen } = collectFails()
    checkCoreRecovered(1, persisted, status({}), fail)
    expect(seen).toEqual([])
    checkCoreRecovered(1, persisted, status({ vote: 0 }), fail)
    checkCoreRecovered(1, persisted, status({ lastIndex: 2 }), fail)
    expect(seen.map((s) => s.invariant)).toEqual(['durability', 'durability'])
  })
})
