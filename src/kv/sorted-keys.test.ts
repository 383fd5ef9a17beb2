/**
 * Proves SortedKeys (the chunked sorted set) and DeadlineIndex against naive models: random adds
 * and deletes (enough to split and empty chunks) give the same membership, order, ranges and
 * due lists as a sorted array.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DeadlineIndex } from './deadline-index.ts'
import { SortedKeys } from './sorted-keys.ts'

const op = fc.record({
  add: fc.boolean(),
  key: fc.string({ maxLength: 4, unit: fc.constantFrom('a', 'b', '/', '_', 'z') }),
})

describe('SortedKeys', () => {
  it('matches a sorted array under random adds and deletes, including range queries', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 3000 }),
        fc.string({ maxLength: 3 }),
        fc.string({ maxLength: 3 }),
        (ops, from, to) => {
          const keys = new SortedKeys()
          const model = new Set<string>()
          for (const { add, key } of ops) {
            expect(add ? keys.add(key) : keys.delete(key)).toBe(add ? !model.has(key) : model.has(key))
            if (add) model.add(key)
            else model.delete(key)
          }
          const sorted = [...model].sort()
          expect([...keys]).toEqual(sorted)
          expect(keys.size).toBe(sorted.length)
          expect([...keys.from(from)]).toEqual(sorted.filter((k) => k >= from))
          expect([...keys.range(from, to)]).toEqual(sorted.filter((k) => k >= from && k < to))
          expect([...keys.range(from, '\0')]).toEqual(sorted.filter((k) => k >= from))
          for (const k of ['', 'a', 'ab', 'zz']) expect(keys.has(k)).toBe(model.has(k))
        },
      ),
      { numRuns: 100 },
    )
  })

  it('stays sorted across many chunk splits', () => {
    const keys = new SortedKeys()
    for (let i = 0; i < 5000; i++) keys.add(String((i * 7919) % 5000).padStart(5, '0'))
    const all = [...keys]
    expect(all.length).toBe(5000)
    expect(all).toEqual([...all].sort())
    for (let i = 0; i < 5000; i += 2) keys.delete(String(i).padStart(5, '0'))
    expect(keys.size).toBe(2500)
    expect([...keys.range('01000', '01010')]).toEqual(['01001', '01003', '01005', '01007', '01009'])
  })
})

describe('DeadlineIndex', () => {
  it('lists due ids earliest first, honours updates and removals', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
            deadline: fc.option(fc.integer({ min: 0, max: 100 })),
          }),
        ),
        fc.integer({ min: 0, max: 100 }),
        (updates, now) => {
          const index = new DeadlineIndex()
          const model = new Map<string, number>()
          for (const { id, deadline } of updates) {
            index.set(id, deadline ?? undefined)
            if (deadline === null) model.delete(id)
            else model.set(id, deadline)
          }
          const due = [...model]
            .filter(([, d]) => d <= now)
            .sort(([ia, a], [ib, b]) => a - b || (ia < ib ? -1 : 1))
            .map(([id]) => id)
          expect(index.due(now, 100)).toEqual(due)
          expect(index.due(now, 2)).toEqual(due.slice(0, 2))
          expect(index.size).toBe(model.size)
        },
      ),
    )
  })
})
