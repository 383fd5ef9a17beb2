/**
 * Proves the StateMachine contract as the node driver sees it: a leader's no-op only advances the
 * applied index (no revision); a command's result or typed error comes back with its request id;
 * undecodable data is answered (with the id when it can be read) and changes nothing; conf entries
 * record members from their context (bootstrap entries without one, promotions, removals) for
 * /v2/members and memberPeerUrls; entries must arrive in order (an assertion).
 */
import { describe, expect, it } from 'vitest'
import type { ConfChange, Entry } from '../raft/core/types.ts'
import { encodeCommand } from './commands.ts'
import { encodeMemberContext } from './members.ts'
import { packValue } from './msgpack.ts'
import { KvStateMachine } from './state-machine.ts'

function normal(sm: KvStateMachine, data: Uint8Array): Entry {
  return { index: sm.appliedIndex + 1, term: 1, type: 'normal', data }
}

function conf(sm: KvStateMachine, change: ConfChange): Entry {
  return { index: sm.appliedIndex + 1, term: 1, type: 'conf', data: new Uint8Array(0), change }
}

describe('apply', () => {
  it('a leader no-op advances the applied index and nothing else', () => {
    const sm = new KvStateMachine()
    expect(sm.apply(normal(sm, new Uint8Array(0)))).toEqual({ type: 'noop' })
    expect([sm.appliedIndex, sm.revision]).toEqual([1, 0])
  })

  it('returns each command result, or its typed error, with the request id', () => {
    const sm = new KvStateMachine()
    const ok = sm.apply(
      normal(sm, encodeCommand({ op: 'v2.set', id: 'p1', now: 5, key: '/k', value: 'v', dir: false })),
    )
    expect(ok).toMatchObject({
      type: 'command',
      id: 'p1',
      op: 'v2.set',
      ok: true,
      result: { action: 'set', index: 1 },
    })
    const failed = sm.apply(
      normal(sm, encodeCommand({ op: 'v2.create', id: 'p2', now: 6, key: '/k', value: 'w', dir: false })),
    )
    expect(failed).toMatchObject({
      type: 'command',
      id: 'p2',
      ok: false,
      error: { code: 'KV_NODE_EXISTS', errorCode: 105 },
    })
    expect([sm.appliedIndex, sm.revision]).toEqual([2, 1])
  })

  it('undecodable data is answered, with the id when readable, and changes nothing but the applied index', () => {
    const sm = new KvStateMachine()
    expect(sm.apply(normal(sm, new Uint8Array([0xc1, 0x00])))).toMatchObject({
      type: 'invalid',
      id: undefined,
      error: { code: 'KV_COMMAND_INVALID' },
    })
    expect(sm.apply(normal(sm, packValue({ id: 'p3', now: 1, op: 'v2.set', key: 42 })))).toMatchObject({
      type: 'invalid',
      id: 'p3',
    })
    expect([sm.appliedIndex, sm.revision]).toEqual([2, 0])
  })

  it('entries must be applied in order, each exactly once', () => {
    const sm = new KvStateMachine()
    sm.apply(normal(sm, new Uint8Array(0)))
    expect(() => sm.apply({ index: 3, term: 1, type: 'normal', data: new Uint8Array(0) })).toThrow(/after 1/)
    expect(() => sm.apply({ index: 1, term: 1, type: 'normal', data: new Uint8Array(0) })).toThrow()
  })
})

describe('members', () => {
  const ctx = (name: string) =>
    encodeMemberContext({ name, peerUrls: [`http://${name}:7001`], clientUrls: [`http://${name}:4001`] })

  it('records bootstrap voters (no context), learners with attributes, promotion, update and removal', () => {
    const sm = new KvStateMachine()
    sm.apply(conf(sm, { type: 'addVoter', nodeId: 1 }))
    expect(sm.members()).toEqual([{ id: 1, name: '', peerUrls: [], clientUrls: [], isLearner: false }])
    const learner = sm.apply(conf(sm, { type: 'addLearner', nodeId: 2, context: ctx('n2') }))
    expect(learner).toMatchObject({ type: 'conf', nodeId: 2, member: { name: 'n2', isLearner: true } })
    sm.apply(conf(sm, { type: 'addVoter', nodeId: 2 }))
    expect(sm.members()[1]).toMatchObject({
      id: 2,
      name: 'n2',
      isLearner: false,
      peerUrls: ['http://n2:7001'],
    })
    const update = encodeCommand({
      op: 'member.update',
      id: 'u',
      now: 0,
      nodeId: 1,
      name: 'n1',
      peerUrls: ['http://n1:7001'],
    })
    expect(sm.apply(normal(sm, update))).toMatchObject({ ok: true, result: { id: 1, name: 'n1' } })
    expect(sm.memberPeerUrls()).toEqual(
      new Map([
        [1, ['http://n1:7001']],
        [2, ['http://n2:7001']],
      ]),
    )
    sm.apply(conf(sm, { type: 'removeNode', nodeId: 1 }))
    expect(sm.members().map((m) => m.id)).toEqual([2])
    const gone = encodeCommand({ op: 'member.update', id: 'u2', now: 0, nodeId: 1, name: 'x' })
    expect(sm.apply(normal(sm, gone))).toMatchObject({ ok: false, error: { code: 'KV_MEMBER_NOT_FOUND' } })
    expect(sm.revision).toBe(0)
  })

  it('a malformed context records empty attributes instead of failing', () => {
    const sm = new KvStateMachine()
    sm.apply(conf(sm, { type: 'addVoter', nodeId: 7, context: new Uint8Array([0xc1]) }))
    expect(sm.members()).toEqual([{ id: 7, name: '', peerUrls: [], clientUrls: [], isLearner: false }])
  })

  it('members survive a snapshot', () => {
    const sm = new KvStateMachine()
    sm.apply(conf(sm, { type: 'addVoter', nodeId: 1, context: ctx('n1') }))
    const copy = new KvStateMachine()
    copy.restore(sm.snapshot())
    expect(copy.members()).toEqual(sm.members())
    expect(copy.appliedIndex).toBe(1)
  })
})
