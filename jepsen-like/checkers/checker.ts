/**
 * The checker contract: a checker reads a finished history (see ../history.ts) and returns a
 * verdict. Checkers are pure (no I/O, no clock except the time budget) and never throw on a
 * well-formed history; a history they cannot judge is `unknown` with the reason in `summary`.
 *
 * Invariants of a CheckResult:
 *   - `verdict === 'invalid'` implies `culprit` is set and `culprit.opIndexes` is non-empty.
 *   - `culprit.opIndexes` are history indexes (Op.index), of invocations or completions.
 *   - `culprit.window.start <= culprit.window.end`, both in history time (ms since the run began);
 *     `end` may be +Infinity for an operation that never completed (JSON writes it as null).
 *   - `details` is JSON-serialisable.
 */
import type { Op } from '../history.ts'

export type Verdict = 'valid' | 'invalid' | 'unknown'

export interface CheckResult {
  checker: string
  verdict: Verdict
  /** One human line. */
  summary: string
  /** Checker-specific, JSON-serialisable. */
  details?: unknown
  /**
   * For invalid: the ops (history indexes) that show the problem, and the smallest time window
   * around the first op that cannot be linearized / first bad event.
   */
  culprit?: { opIndexes: number[]; window: { start: number; end: number } }
}

export interface CheckOptions {
  /** Wall-clock budget for the whole check; past it the verdict is `unknown`, never a hang. */
  timeBudgetMs: number
}

export interface Checker {
  name: string
  check(history: readonly Op[], options: CheckOptions): CheckResult
}
