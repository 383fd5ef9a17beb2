/**
 * Proves the reconnect delay: exponential from reconnectBackoffMinMs, capped at
 * reconnectBackoffMaxMs, jittered within [ceiling / 2, ceiling] by the injected random source.
 */
import fc from 'fast-check'
import { expect, it } from 'vitest'
import { reconnectDelayMs } from './backoff.ts'

const limits = { reconnectBackoffMinMs: 50, reconnectBackoffMaxMs: 2_000 }

it.each([
  [0, 0, 50],
  [0, 0.999, 50],
  [1, 0, 50],
  [1, 0.5, 75],
  [3, 0, 200],
  [3, 0.999, 399],
  [10, 0, 1_000],
  [1_000, 0.999, 1_999],
])('after %i failures with random %f waits %i ms', (failures, draw, expected) => {
  expect(reconnectDelayMs(failures, limits, () => draw)).toBe(expected)
})

it('stays within [max(min, ceiling / 2), ceiling] for any failure count and draw', () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 10_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (n, draw) => {
        const ceiling = Math.min(2_000, 50 * 2 ** Math.min(n, 30))
        const delay = reconnectDelayMs(n, limits, () => draw)
        expect(delay).toBeGreaterThanOrEqual(Math.max(50, ceiling / 2 - 1))
        expect(delay).toBeLessThanOrEqual(ceiling)
      },
    ),
  )
})

it('asserts on a random source outside [0, 1)', () => {
  expect(() => reconnectDelayMs(0, limits, () => 1)).toThrow(/random/)
})
