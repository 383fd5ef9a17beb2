/**
 * Proves that check durations parse as Go's time.ParseDuration does (for non-negative values),
 * that JSON numbers are nanoseconds as in Consul, and that garbage is refused with a CHECK_INVALID
 * naming the field: never NaN, never negative, never a silent default.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../errors.ts'
import {
  durationNsMax,
  formatDurationNs,
  parseDurationNs,
  readDurationMs,
  readDurationNs,
} from './durations.ts'

describe('parseDurationNs: Go syntax', () => {
  it.each([
    ['0', 0n],
    ['+0', 0n],
    ['-0', 0n],
    ['0s', 0n],
    ['10s', 10_000_000_000n],
    ['1m30s', 90_000_000_000n],
    ['250ms', 250_000_000n],
    ['1.5h', 5_400_000_000_000n],
    ['100us', 100_000n],
    ['100\u00b5s', 100_000n],
    ['100\u03bcs', 100_000n],
    ['7ns', 7n],
    ['.5s', 500_000_000n],
    ['5.s', 5_000_000_000n],
    ['1h2m3s4ms5us6ns', 3_723_004_005_006n],
    ['1.0000000019s', 1_000_000_001n],
    ['2562047h47m16.854775807s', durationNsMax],
  ])('%s is %d ns', (text, ns) => {
    expect(parseDurationNs(text)).toBe(ns)
  })

  it.each([
    ['', 'empty'],
    ['1', 'missing unit'],
    ['10', 'missing unit'],
    ['s', 'expected a number'],
    ['.s', 'expected a number'],
    ['1.2.3s', 'missing unit'],
    ['10x', 'unknown unit "x"'],
    ['10 s', 'unknown unit " s"'],
    ['10S', 'unknown unit "S"'],
    ['-5s', 'negative'],
    ['+', 'no number'],
    ['2562047h47m16.854775808s', 'largest'],
    ['99999999999999999999h', 'largest'],
    ['1'.repeat(65), 'longer than 64'],
  ])('%j is refused (%s)', (text, reason) => {
    const result = parseDurationNs(text)
    expect(typeof result).toBe('string')
    expect(result).toContain(reason)
  })
})

describe('readDurationMs: field values', () => {
  it('reads strings and Consul nanosecond numbers', () => {
    expect(readDurationMs('10s', 'Interval')).toBe(10_000)
    expect(readDurationMs('100us', 'Interval')).toBe(0.1)
    expect(readDurationMs(1_500_000_000, 'Interval')).toBe(1500)
    expect(readDurationMs(2.9, 'Interval')).toBe(0.000002)
    expect(readDurationMs(0, 'TTL')).toBe(0)
  })

  it.each([
    [-1, 'negative'],
    [Number.NaN, 'finite'],
    [Number.POSITIVE_INFINITY, 'finite'],
    [1e19, 'largest'],
    [null, 'expected a duration'],
    [true, 'expected a duration'],
    [{}, 'expected a duration'],
    ['ten seconds', 'expected a number'],
  ])('%s is a CHECK_INVALID naming the field', (value, reason) => {
    let thrown: unknown
    try {
      readDurationMs(value, 'Timeout')
    } catch (error) {
      thrown = error
    }
    expect(isCairnError(thrown, 'CHECK_INVALID')).toBe(true)
    expect((thrown as Error).message).toContain('Timeout: ')
    expect((thrown as Error).message).toContain(reason)
  })

  it('can raise another code for other callers', () => {
    expect(() => readDurationNs('x', '--flag', 'CONFIG_INVALID')).toThrow(/configuration is invalid: --flag/)
  })
})

describe('properties', () => {
  const nsArb = fc.bigInt({ min: 0n, max: durationNsMax })

  it('formatDurationNs then parseDurationNs is the identity (Go String() round trip)', () => {
    fc.assert(
      fc.property(nsArb, (ns) => {
        expect(parseDurationNs(formatDurationNs(ns))).toBe(ns)
      }),
      { numRuns: 2000 },
    )
  })

  it('a sum of generated components parses to the exact sum', () => {
    const units: [string, bigint][] = [
      ['ns', 1n],
      ['us', 1_000n],
      ['ms', 1_000_000n],
      ['s', 1_000_000_000n],
      ['m', 60_000_000_000n],
      ['h', 3_600_000_000_000n],
    ]
    const component = fc.record({
      whole: fc.integer({ min: 0, max: 10_000 }),
      fraction: fc.option(fc.stringMatching(/^[0-9]{1,6}$/), { nil: undefined }),
      unit: fc.constantFrom(...units),
    })
    fc.assert(
      fc.property(fc.array(component, { minLength: 1, maxLength: 5 }), (parts) => {
        let text = ''
        let expected = 0n
        for (const { whole, fraction, unit } of parts) {
          const [name, unitNs] = unit
          text += fraction === undefined ? `${whole}${name}` : `${whole}.${fraction}${name}`
          expected += BigInt(whole) * unitNs
          if (fraction !== undefined) expected += (BigInt(fraction) * unitNs) / 10n ** BigInt(fraction.length)
        }
        fc.pre(text.length <= 64)
        expect(parseDurationNs(text)).toBe(expected)
      }),
      { numRuns: 2000 },
    )
  })

  it('any string is either a non-negative whole duration or a reason, never NaN', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[-+0-9.a-zµ]{0,12}$/)), (text) => {
        const result = parseDurationNs(text)
        if (typeof result === 'bigint') {
          expect(result >= 0n && result <= durationNsMax).toBe(true)
          const ms = readDurationMs(text, 'Interval')
          expect(Number.isFinite(ms) && ms >= 0).toBe(true)
        } else {
          expect(() => readDurationMs(text, 'Interval')).toThrow(/Interval: /)
        }
      }),
      { numRuns: 3000 },
    )
  })
})
