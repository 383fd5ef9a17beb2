/**
 * How checkers report: they call a Fail function, which throws a SimViolation unless that invariant
 * is disabled for the run (planted-bug tests disable the shortcut checks to show the deeper ones).
 * A checker must leave its own state consistent when Fail returns.
 */
import { type Invariant, SimViolation } from '../violation.ts'

export type Fail = (invariant: Invariant, detail: string) => void

export function makeFail(disabled: ReadonlySet<Invariant> = new Set()): Fail {
  return (invariant, detail) => {
    if (!disabled.has(invariant)) throw new SimViolation(invariant, detail)
  }
}

/** A Fail for checker unit tests: collects instead of throwing. */
export function collectFails(): { fail: Fail; seen: { invariant: Invariant; detail: string }[] } {
  const seen: { invariant: Invariant; detail: string }[] = []
  return { fail: (invariant, detail) => seen.push({ invariant, detail }), seen }
}
