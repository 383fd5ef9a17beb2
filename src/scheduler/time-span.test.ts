/**
 * Proves systemd time spans (systemd.time(7)) as RestartSec= and TimeoutStopSec= take them: units,
 * combinations with and without spaces, fractions, bare seconds, rounding up to whole milliseconds,
 * and the refusals.
 */
import { describe, expect, it } from 'vitest'
import { unitLimits } from './limits.ts'
import { parseTimeSpanMs } from './time-span.ts'

describe('parseTimeSpanMs', () => {
  it.each([
    ['90', 90_000],
    ['0', 0],
    ['5s', 5_000],
    ['1min 30s', 90_000],
    ['1min30s', 90_000],
    ['2 h', 7_200_000],
    ['500ms', 500],
    ['500 msec', 500],
    ['1.5s', 1_500],
    ['0.1s', 100],
    ['1us', 1],
    ['1500us', 2],
    ['1ns', 1],
    ['2d 3h', 2 * 86_400_000 + 3 * 3_600_000],
    ['1w', 604_800_000],
    ['3 seconds 2 minutes', 123_000],
    ['1m', 60_000],
    ['  7s  ', 7_000],
  ])('%j → %i ms', (text, ms) => {
    expect(parseTimeSpanMs(text)).toBe(ms)
  })

  it.each([
    ['', 'empty'],
    ['s', 'not a time span'],
    ['-5s', 'not a time span'],
    ['5 parsecs', 'unknown time unit "parsecs"'],
    ['1 2', 'a number without a unit'],
    ['5s 3', 'a number without a unit'],
    ['1.s', 'a number without a unit'],
    ['2M', 'timeSpanMsMax'],
    ['8d', 'timeSpanMsMax'],
    ['1234567890123s', 'too many digits'],
    ['1.1234567891s', 'too many digits'],
  ])('refuses %j', (text, reason) => {
    expect(() => parseTimeSpanMs(text)).toThrow(reason)
  })

  it('accepts exactly timeSpanMsMax', () => {
    expect(parseTimeSpanMs('7d')).toBe(unitLimits.timeSpanMsMax)
    expect(parseTimeSpanMs('1w')).toBe(unitLimits.timeSpanMsMax)
  })
})
