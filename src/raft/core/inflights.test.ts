/**
 * Proves the flow-control window of one follower: it holds at most countMax appends, frees them in
 * send order as acknowledgements arrive, keeps its byte total exact, and agrees with a plain array
 * model over long random runs (which also exercises its internal storage compaction).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Inflights } from './inflights.ts'
import { titled } from './test-cluster.ts'

describe('Inflights', () => {
  it('is full at countMax and refuses to add more', () => {
    const inflights = new Inflights(3)
    inflights.add(1, 10)
    inflights.add(2, 20)
    expect(inflights.full()).toBe(false)
    inflights.add(5, 30)
    expect([inflights.count, inflights.bytes, inflights.full()]).toEqual([3, 60, true])
    expect(() => inflights.add(6, 1)).toThrow(/add while full/)
  })

  it.each(
    titled(
      [
        { last: 4, why: 'equal to the previous last index' },
        { last: 3, why: 'behind the previous last index' },
      ],
      (c) => `refuses an append whose last index is not after the previous one (${c.why})`,
    ),
  )('%s', (_, { last }) => {
    const inflights = new Inflights(3)
    inflights.add(4, 1)
    expect(() => inflights.add(last, 1)).toThrow(/not after/)
  })

  it.each(
    titled(
      [
        { ack: 0, count: 3, bytes: 60 },
        { ack: 1, count: 2, bytes: 50 },
        { ack: 4, count: 2, bytes: 50 },
        { ack: 5, count: 1, bytes: 30 },
        { ack: 9, count: 0, bytes: 0 },
      ],
      (c) => `freeLE(${c.ack}) frees every append ending at or before it`,
    ),
  )('%s', (_, { ack, count, bytes }) => {
    const inflights = new Inflights(3)
    inflights.add(1, 10)
    inflights.add(5, 20)
    inflights.add(9, 30)
    inflights.freeLE(ack)
    expect([inflights.count, inflights.bytes]).toEqual([count, bytes])
  })

  it('freeFirstOne frees the oldest append (a heartbeat response to a full window)', () => {
    const inflights = new Inflights(2)
    inflights.add(3, 7)
    inflights.add(4, 9)
    inflights.freeFirstOne()
    expect([inflights.count, inflights.bytes, inflights.full()]).toEqual([1, 9, false])
    inflights.freeFirstOne()
    inflights.freeFirstOne() // on an empty window: nothing to free
    expect([inflights.count, inflights.bytes]).toEqual([0, 0])
  })

  it('reset empties the window and forgets the last index', () => {
    const inflights = new Inflights(2)
    inflights.add(10, 5)
    inflights.reset()
    expect([inflights.count, inflights.bytes]).toEqual([0, 0])
    inflights.add(1, 1) // a lower index is fine after a reset
    expect(inflights.count).toBe(1)
  })

  it('matches an array model over random add / freeLE / freeFirstOne / reset runs', () => {
    type Op =
      | { kind: 'add'; gap: number; bytes: number }
      | { kind: 'freeLE'; back: number }
      | { kind: 'freeFirst' }
      | { kind: 'reset' }
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('add' as const),
          gap: fc.integer({ min: 1, max: 3 }),
          bytes: fc.nat(100),
        }),
      },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('freeLE' as const), back: fc.nat(6) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'freeFirst' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
    )
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 600 }), (countMax, ops) => {
        const inflights = new Inflights(countMax)
        let model: { last: number; bytes: number }[] = []
        let lastIndex = 0
        for (const o of ops) {
          if (o.kind === 'add') {
            if (model.length >= countMax) {
              expect(() => inflights.add(lastIndex + o.gap, o.bytes)).toThrow()
              continue
            }
            lastIndex += o.gap
            inflights.add(lastIndex, o.bytes)
            model.push({ last: lastIndex, bytes: o.bytes })
          } else if (o.kind === 'freeLE') {
            const ack = lastIndex - o.back
            inflights.freeLE(ack)
            model = model.filter((m) => m.last > ack)
          } else if (o.kind === 'freeFirst') {
            inflights.freeFirstOne()
            model = model.slice(1)
          } else {
            inflights.reset()
            model = []
          }
          expect(inflights.count).toBe(model.length)
          expect(inflights.bytes).toBe(model.reduce((sum, m) => sum + m.bytes, 0))
          expect(inflights.full()).toBe(model.length >= countMax)
        }
      }),
      { numRuns: 300 },
    )
  })
})
