/** Placeholder: the register checker is being written; until then it judges nothing. */
import type { Checker } from './checker.ts'

export const registerChecker: Checker = {
  name: 'register',
  check: () => ({
    checker: 'register',
    verdict: 'unknown',
    summary: 'the register checker is not written yet',
  }),
}
