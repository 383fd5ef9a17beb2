/**
 * Proves the simulation's state machine: client writes round-trip through entry data, entries apply
 * strictly in order, and a snapshot restores exactly the applied index, chain hash and map.
 */
import { describe, expect, it } from 'vitest'
import type { Entry } from '../core/types.ts'
import { decodeWrite, encodeWrite, KvApp } from './app.ts'
import { SimViolation } from './violation.ts'

function write(index: number, op: number, key: string): Entry {
  return { index, term: 1, type: 'normal', data: encodeWrite({ op, client: 1, key, value: `v${op}` }) }
}

describe('KvApp', () => {
  it('round-trips client writes; no-ops and conf entries carry none', () => {
    expect(decodeWrite(write(1, 7, 'k'))).toEqual({ op: 7, client: 1, key: 'k', value: 'v7' })
    expect(decodeWrite({ index: 1, term: 1, type: 'normal', data: new Uint8Array() })).toBeUndefined()
    expect(
      decodeWrite({
        index: 1,
        term: 1,
        type: 'conf',
        data: new Uint8Array(),
        change: { type: 'addLearner', nodeId: 4 },
      }),
    ).toBeUndefined()
  })

  it('applies in order and keeps the last value of each key', () => {
    const app = new KvApp()
    app.apply(write(1, 1, 'a'))
    app.apply({ index: 2, term: 1, type: 'normal', data: new Uint8Array() })
    app.apply(write(3, 3, 'a'))
    expect(app.applied).toBe(3)
    expect(app.get('a')).toBe('v3')
  })

  it('refuses a gap or a repeat', () => {
    const app = new KvApp()
    app.apply(write(1, 1, 'a'))
    expect(() => app.apply(write(3, 3, 'a'))).toThrow(SimViolation)
    expect(() => app.apply(write(1, 1, 'a'))).toThrow(SimViolation)
  })

  it('chains differ when histories differ, and a snapshot restores everything', () => {
    const a = new KvApp()
    const b = new KvApp()
    a.apply(write(1, 1, 'x'))
    b.apply(write(1, 2, 'x'))
    expect(a.chain).not.toBe(b.chain)
    a.apply(write(2, 3, 'y'))
    const restored = KvApp.fromSnapshot(a.encodeSnapshot())
    expect([restored.applied, restored.chain, restored.get('x'), restored.get('y')]).toEqual([
      2,
      a.chain,
      'v1',
      'v3',
    ])
  })
})
