/**
 * Proves that a well-formed message no correct peer could send in the receiver's state (a hostile
 * or broken peer that knows the cluster id) is refused: the member does not crash, changes nothing,
 * answers nothing, and counts it in messagesRefused (which the simulator treats as a violation).
 */
import { describe, expect, it } from 'vitest'
import { bootstrapState } from './bootstrap.ts'
import type { RaftCore } from './raft.ts'
import { drain, drainMessages, electAlone, makeCore } from './test-cluster.ts'
import type { Message } from './types.ts'

function follower(): RaftCore {
  const core = makeCore(2, bootstrapState([1, 2, 3]))
  // Leader 1 of term 2 appends its no-op at 4 and commits through 4.
  core.step({
    type: 'app',
    from: 1,
    to: 2,
    term: 2,
    index: 3,
    logTerm: 1,
    commit: 4,
    entries: [{ index: 4, term: 2, type: 'normal', data: new Uint8Array(0) }],
  })
  drain(core)
  return core
}

function leader(): RaftCore {
  const core = makeCore(1, bootstrapState([1, 2, 3]))
  electAlone(core, [2])
  return core
}

const cases: { name: string; make: () => RaftCore; message: (core: RaftCore) => Message }[] = [
  {
    name: 'a heartbeat that commits beyond the follower’s log',
    make: follower,
    message: (core) => ({ type: 'heartbeat', from: 1, to: 2, term: core.term, commit: 99, readRound: 0 }),
  },
  {
    name: 'an append acknowledgement beyond the leader’s log',
    make: leader,
    message: (core) => ({
      type: 'appResp',
      from: 2,
      to: 1,
      term: core.term,
      index: 1_000,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    }),
  },
  {
    name: 'a heartbeat response for a read round the leader never started',
    make: leader,
    message: (core) => ({ type: 'heartbeatResp', from: 2, to: 1, term: core.term, readRound: 7 }),
  },
]

describe('messages impossible from a correct peer', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s is refused, counted, and changes nothing', (_, c) => {
    const core = c.make()
    const before = core.status()
    expect(() => core.step(c.message(core))).not.toThrow()
    expect(core.messagesRefused).toBe(1)
    expect(core.status()).toEqual(before)
    expect(drainMessages(core)).toEqual([])
  })
})

describe('an append that would rewrite committed entries', () => {
  it('cannot reach the log: it starts below the commit, so it is answered with the commit and changes nothing', () => {
    const core = follower()
    const before = core.status()
    core.step({
      type: 'app',
      from: 1,
      to: 2,
      term: core.term,
      index: 3,
      logTerm: 1,
      commit: 4,
      entries: [{ index: 4, term: 3, type: 'normal', data: new Uint8Array([1]) }],
    })
    expect(core.status()).toEqual(before)
    expect(drainMessages(core)).toMatchObject([{ type: 'appResp', index: 4, reject: false }])
  })
})
