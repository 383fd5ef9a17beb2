/** Placeholder: the watch checker is being written; until then it judges nothing. */
import type { Checker } from './checker.ts'

export const watchChecker: Checker = {
  name: 'watch',
  check: () => ({ checker: 'watch', verdict: 'unknown', summary: 'the watch checker is not written yet' }),
}
