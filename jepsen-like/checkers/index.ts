/**
 * Which checkers judge which workload, and how their verdicts combine.
 * Combination rule: any `invalid` makes the run invalid; otherwise any `unknown` makes it unknown;
 * only all-`valid` is valid. An empty list of results is `unknown` (nothing was checked).
 */
import type { Checker, CheckResult, Verdict } from './checker.ts'
import { registerChecker } from './register.ts'
import { setChecker } from './set.ts'
import { watchChecker } from './watch.ts'

export type { Checker, CheckOptions, CheckResult, Verdict } from './checker.ts'

export type Workload = 'register' | 'set' | 'watch'

export function checkersFor(workload: Workload): Checker[] {
  switch (workload) {
    case 'register':
      return [registerChecker]
    case 'set':
      return [setChecker]
    case 'watch':
      return [watchChecker]
  }
}

export function combineVerdicts(verdicts: readonly Verdict[]): Verdict {
  if (verdicts.length === 0) return 'unknown'
  if (verdicts.includes('invalid')) return 'invalid'
  if (verdicts.includes('unknown')) return 'unknown'
  return 'valid'
}

export function overallVerdict(results: readonly CheckResult[]): Verdict {
  return combineVerdicts(results.map((result) => result.verdict))
}
