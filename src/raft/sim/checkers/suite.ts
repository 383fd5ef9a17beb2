/**
 * All checkers of one run, sharing one Fail (so a run can disable chosen invariants).
 */
import type { Invariant } from '../violation.ts'
import { ApplyChecker } from './apply.ts'
import { ElectionChecker } from './election.ts'
import { type Fail, makeFail } from './fail.ts'
import { LogChecker } from './log.ts'
import { ReadChecker } from './reads.ts'

export interface CheckSuite {
  fail: Fail
  election: ElectionChecker
  log: LogChecker
  apply: ApplyChecker
  reads: ReadChecker
}

export function makeCheckSuite(disabled: ReadonlySet<Invariant> = new Set()): CheckSuite {
  const fail = makeFail(disabled)
  return {
    fail,
    election: new ElectionChecker(fail),
    log: new LogChecker(fail),
    apply: new ApplyChecker(fail),
    reads: new ReadChecker(fail),
  }
}
