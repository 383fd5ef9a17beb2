/**
 * Durations as Consul's check definitions give them: a Go `time.ParseDuration` string ("10s",
 * "1m30s", "250ms", "1.5h", "100us", "0") or a JSON number, which Consul reads as nanoseconds
 * (its CheckType.UnmarshalJSON converts a float64 straight to a time.Duration).
 *
 * Invariants:
 * - A parsed duration is an exact whole number of nanoseconds in 0..durationNsMax; it is never
 *   NaN, never negative, never Infinity. Go accepts "-5s"; we refuse negatives, since no check
 *   field means anything by them.
 * - A fraction is truncated to whole nanoseconds, exactly (Go rounds through a float64, so a
 *   fraction with more than ~15 digits may differ from Go by a nanosecond).
 * - Milliseconds are `ns / 1e6` and may be fractional ("100us" is 0.1 ms).
 * - Bad input is a CairnError (CHECK_INVALID unless the caller names another code) whose message
 *   names the field and the reason.
 */
import { CairnError, type ErrorCode } from '../errors.ts'

/** Go's largest time.Duration (about 292 years). */
export const durationNsMax = (1n << 63n) - 1n
/** A duration string longer than this is refused unread; real ones are a few characters. */
export const durationTextBytesMax = 64

const nsPerUnit = new Map<string, bigint>([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // micro sign, as Go accepts
  ['\u03bcs', 1_000n], // Greek small letter mu, as Go accepts
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
])

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9'
}

/**
 * Parses Go's duration syntax, `[+-]?(digits[.digits]unit)+` or a bare `0`, into nanoseconds.
 * Returns the reason as a string when the text is not a valid non-negative duration.
 */
export function parseDurationNs(text: string): bigint | string {
  if (text.length === 0) return 'empty duration'
  if (text.length > durationTextBytesMax) return `longer than ${durationTextBytesMax} characters`
  let i = 0
  let negative = false
  if (text[0] === '+' || text[0] === '-') {
    negative = text[0] === '-'
    i = 1
  }
  if (text.slice(i) === '0') return 0n
  if (i === text.length) return 'no number after the sign'
  let total = 0n
  while (i < text.length) {
    const intStart = i
    while (isDigit(text[i])) i++
    const intDigits = text.slice(intStart, i)
    let fracDigits = ''
    if (text[i] === '.') {
      const fracStart = ++i
      while (isDigit(text[i])) i++
      fracDigits = text.slice(fracStart, i)
    }
    if (intDigits === '' && fracDigits === '') return `expected a number at offset ${intStart}`
    const unitStart = i
    while (i < text.length && text[i] !== '.' && !isDigit(text[i])) i++
    const unit = text.slice(unitStart, i)
    if (unit === '') return `missing unit after "${text.slice(intStart, i)}" (use ns, us, ms, s, m or h)`
    const unitNs = nsPerUnit.get(unit)
    if (unitNs === undefined) return `unknown unit "${unit}" (use ns, us, ms, s, m or h)`
    total += BigInt(intDigits || '0') * unitNs
    if (fracDigits !== '') total += (BigInt(fracDigits) * unitNs) / 10n ** BigInt(fracDigits.length)
    if (total > durationNsMax) return 'longer than the largest duration (about 292 years)'
  }
  if (negative && total !== 0n) return 'negative durations are not accepted'
  return total
}

/**
 * Reads a duration field of a definition: a Go duration string or a number of nanoseconds.
 * Returns nanoseconds; throws `code` naming `field` when the value is not a valid duration.
 */
export function readDurationNs(value: unknown, field: string, code: ErrorCode = 'CHECK_INVALID'): bigint {
  if (typeof value === 'string') {
    const parsed = parseDurationNs(value)
    if (typeof parsed === 'string')
      throw new CairnError(code, `${field}: ${parsed}: ${JSON.stringify(value)}`)
    return parsed
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CairnError(code, `${field}: not a finite number`)
    if (value < 0) throw new CairnError(code, `${field}: negative durations are not accepted`)
    const ns = BigInt(Math.trunc(value))
    if (ns > durationNsMax) throw new CairnError(code, `${field}: longer than the largest duration`)
    return ns
  }
  throw new CairnError(code, `${field}: expected a duration string like "10s" or a number of nanoseconds`)
}

/** As readDurationNs, in milliseconds (possibly fractional). */
export function readDurationMs(value: unknown, field: string, code: ErrorCode = 'CHECK_INVALID'): number {
  return nsToMs(readDurationNs(value, field, code))
}

export function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6
}

/** Formats nanoseconds as Go's time.Duration.String() does: "1h2m3.5s", "250ms", "100µs", "0s". */
export function formatDurationNs(ns: bigint): string {
  if (ns < 0n) return `-${formatDurationNs(-ns)}`
  if (ns === 0n) return '0s'
  if (ns < 1_000n) return `${ns}ns`
  if (ns < 1_000_000n) return `${decimal(ns, 1_000n)}\u00b5s`
  if (ns < 1_000_000_000n) return `${decimal(ns, 1_000_000n)}ms`
  const hours = ns / 3_600_000_000_000n
  const minutes = (ns / 60_000_000_000n) % 60n
  const seconds = decimal(ns % 60_000_000_000n, 1_000_000_000n)
  if (hours > 0n) return `${hours}h${minutes}m${seconds}s`
  if (minutes > 0n) return `${minutes}m${seconds}s`
  return `${seconds}s`
}

/** Formats milliseconds (as read by readDurationMs) the way Go would print the duration. */
export function formatDurationMs(ms: number): string {
  return formatDurationNs(BigInt(Math.round(ms * 1e6)))
}

/** `value / unit` as a decimal without trailing zeros in the fraction. */
function decimal(value: bigint, unit: bigint): string {
  const whole = value / unit
  const rest = value % unit
  if (rest === 0n) return `${whole}`
  const digits = unit.toString().length - 1
  return `${whole}.${rest.toString().padStart(digits, '0').replace(/0+$/, '')}`
}
