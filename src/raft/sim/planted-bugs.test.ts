/**
 * Proof that the simulator can fail: with each planted bug, some seed within seedsMax must report a
 * violation of the kind the bug breaks, and the first violation found must be of that kind (any
 * other kind would be a false alarm or a checker confusing one rule for another). Bugs with a
 * `deeper` profile are run again with their direct check disabled, to show the next line of
 * defence also catches them. Each failing seed replays exactly with `npm run sim -- --seed S --bug NAME`.
 */
import { describe, expect, it } from 'vitest'
import { type PlantedBugName, plantedBugNames, plantedBugProfiles, plantedBugRunOptions } from './planted.ts'
import { formatResult } from './report.ts'
import { type RunResult, runSeed } from './run.ts'
import type { Invariant } from './violation.ts'

/** Seeds searched for a failure; every profile finds one within the first few dozen. */
const seedsMax = 200

function firstFailure(bug: PlantedBugName, disabled: Invariant[]): RunResult | undefined {
  const options = plantedBugRunOptions([bug])
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = runSeed({ seed, ...options, disabledInvariants: disabled })
    if (result.violation !== undefined) return result
  }
  return undefined
}

function expectCaught(bug: PlantedBugName, expected: Invariant[], disabled: Invariant[]): void {
  const result = firstFailure(bug, disabled)
  expect(result, `${bug}: no violation in ${seedsMax} seeds`).toBeDefined()
  const failed = result as RunResult
  expect(expected, formatResult(failed, { bugs: [bug], disabled })).toContain(failed.violation?.invariant)
  const replay = runSeed({ seed: failed.seed, ...plantedBugRunOptions([bug]), disabledInvariants: disabled })
  expect(replay.violation).toEqual(failed.violation)
}

describe('planted bugs are caught', () => {
  for (const bug of plantedBugNames) {
    const profile = plantedBugProfiles[bug]
    it(`${bug} breaks ${profile.expected.join(' or ')}`, () => {
      expectCaught(bug, profile.expected, [])
    })
    const deeper = profile.deeper
    if (deeper !== undefined) {
      it(`${bug} without the ${deeper.disabled.join(', ')} check still breaks ${deeper.expected.join(' or ')}`, () => {
        expectCaught(bug, deeper.expected, deeper.disabled)
      })
    }
  }
})
