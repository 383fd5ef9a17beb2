/**
 * Proves that Prng is a pure function of its seed (the property every seeded simulation and election
 * jitter test rests on), that forks are reproducible and independent of the parent's later draws,
 * and that the derived helpers stay in range.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from './prng.ts'
import { titled } from './test-cluster.ts'

function draws(prng: Prng, count: number): number[] {
  return Array.from({ length: count }, () => prng.nextUint32())
}

describe('Prng', () => {
  it.each([0, 1, 42, 0xffffffff, -7])('the same seed (%i) gives the same stream', (seed) => {
    expect(draws(new Prng(seed), 1_000)).toEqual(draws(new Prng(seed), 1_000))
  })

  it('different seeds give different streams', () => {
    const streams = new Set([1, 2, 3, 4, 5].map((seed) => draws(new Prng(seed), 8).join(',')))
    expect(streams.size).toBe(5)
  })

  it('seed 0 does not produce a degenerate (constant) stream', () => {
    expect(new Set(draws(new Prng(0), 100)).size).toBe(100)
  })

  it('a fork is reproducible and unaffected by the parent drawing more afterwards', () => {
    const a = new Prng(9)
    const b = new Prng(9)
    const forkA = a.fork()
    const forkB = b.fork()
    draws(a, 50) // only the parent of forkA draws more
    expect(draws(forkA, 100)).toEqual(draws(forkB, 100))
    expect(draws(new Prng(9).fork(), 10)).not.toEqual(draws(new Prng(9), 10))
  })

  it('int(min, max) stays in [min, max) and reaches every value', () => {
    const prng = new Prng(3)
    const seen = new Set<number>()
    for (let i = 0; i < 2_000; i++) {
      const v = prng.int(10, 20)
      expect(v).toBeGreaterThanOrEqual(10)
      expect(v).toBeLessThan(20)
      seen.add(v)
    }
    expect(seen.size).toBe(10)
  })

  it('float() stays in [0, 1) and chance() respects its bounds', () => {
    const prng = new Prng(4)
    for (let i = 0; i < 1_000; i++) {
      const f = prng.float()
      expect(f >= 0 && f < 1).toBe(true)
    }
    expect(Array.from({ length: 100 }, () => prng.chance(0)).some(Boolean)).toBe(false)
    expect(Array.from({ length: 100 }, () => prng.chance(1)).every(Boolean)).toBe(true)
  })

  it('shuffled returns a permutation of a copy; pick returns a member', () => {
    const prng = new Prng(5)
    const items = [1, 2, 3, 4, 5, 6, 7, 8]
    const shuffled = prng.shuffled(items)
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items)
    expect(items).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(items).toContain(prng.pick(items))
  })

  it.each(
    titled(
      [
        { name: 'int on an empty range', fn: (p: Prng) => p.int(3, 3) },
        { name: 'pick from no items', fn: (p: Prng) => p.pick([]) },
      ],
      (c) => `${c.name} throws`,
    ),
  )('%s', (_, { fn }) => {
    expect(() => fn(new Prng(1))).toThrow()
  })
})
