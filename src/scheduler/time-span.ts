/**
 * systemd time spans (systemd.time(7)) for RestartSec= and TimeoutStopSec=: `5s`, `1min 30s`,
 * `1min30s`, `500ms`, `2.5h`, or a plain number of seconds (`90`).
 *
 * Invariants:
 * - The result is a whole number of milliseconds in 0..timeSpanMsMax; a span that is not a whole
 *   millisecond is rounded up (`1us` is 1 ms), so a non-zero span never becomes 0.
 * - Sums are exact: each component is computed in BigInt nanoseconds, never through a float.
 * - Bad text is a ValueFault naming what is wrong; `infinity` is the caller's business.
 */
import { unitLimits } from './limits.ts'
import { ValueFault } from './unit-error.ts'

const nsPerSecond = 1_000_000_000n

/** systemd's unit words (time-util.c), case-sensitive: `m` is minutes, `M` months. */
const nsPerUnit = new Map<string, bigint>([
  ['ns', 1n],
  ['nsec', 1n],
  ['us', 1_000n],
  ['usec', 1_000n],
  ['\u00b5s', 1_000n],
  ['\u03bcs', 1_000n],
  ['ms', 1_000_000n],
  ['msec', 1_000_000n],
  ['s', nsPerSecond],
  ['sec', nsPerSecond],
  ['second', nsPerSecond],
  ['seconds', nsPerSecond],
  ['m', 60n * nsPerSecond],
  ['min', 60n * nsPerSecond],
  ['minute', 60n * nsPerSecond],
  ['minutes', 60n * nsPerSecond],
  ['h', 3_600n * nsPerSecond],
  ['hr', 3_600n * nsPerSecond],
  ['hour', 3_600n * nsPerSecond],
  ['hours', 3_600n * nsPerSecond],
  ['d', 86_400n * nsPerSecond],
  ['day', 86_400n * nsPerSecond],
  ['days', 86_400n * nsPerSecond],
  ['w', 604_800n * nsPerSecond],
  ['week', 604_800n * nsPerSecond],
  ['weeks', 604_800n * nsPerSecond],
  ['M', 2_629_800n * nsPerSecond],
  ['month', 2_629_800n * nsPerSecond],
  ['months', 2_629_800n * nsPerSecond],
  ['y', 31_557_600n * nsPerSecond],
  ['year', 31_557_600n * nsPerSecond],
  ['years', 31_557_600n * nsPerSecond],
])

/** One component: digits, an optional fraction, optional blanks, then a unit word (or nothing). */
const componentRe = /^(\d+)(?:\.(\d+))?[ \t]*([a-zA-Z\u00b5\u03bc]*)[ \t]*/

/** Parses a systemd time span into whole milliseconds (rounded up). */
export function parseTimeSpanMs(text: string): number {
  const trimmed = text.trim()
  if (trimmed === '') throw new ValueFault('empty time span')
  let rest = trimmed
  let totalNs = 0n
  let components = 0
  while (rest !== '') {
    const match = componentRe.exec(rest)
    if (match === null)
      throw new ValueFault(`${JSON.stringify(text)} is not a time span (e.g. 5s, 1min 30s, 500ms)`)
    const [all, whole = '', fraction = '', unit = ''] = match
    if (whole.length > 12 || fraction.length > 9)
      throw new ValueFault(`too many digits in ${JSON.stringify(text)}`)
    // A bare number means seconds, but only as the whole value ("90"), as systemd's parse_sec.
    const unitNs =
      unit === '' && components === 0 && all.length === rest.length ? nsPerSecond : nsPerUnit.get(unit)
    if (unitNs === undefined) {
      throw new ValueFault(
        unit === '' ? `a number without a unit in ${JSON.stringify(text)}` : `unknown time unit "${unit}"`,
      )
    }
    const scale = 10n ** BigInt(fraction.length)
    totalNs += (BigInt(whole + fraction) * unitNs) / scale
    components++
    rest = rest.slice(all.length)
  }
  const ms = (totalNs + 999_999n) / 1_000_000n
  if (ms > BigInt(unitLimits.timeSpanMsMax)) {
    throw new ValueFault(
      `${JSON.stringify(text)} is longer than timeSpanMsMax (${unitLimits.timeSpanMsMax} ms)`,
    )
  }
  return Number(ms)
}
