/**
 * One seeded run: draw the scenario, run the fault phase, heal, and require liveness (steady
 * progress, then convergence). The first violation ends the run.
 *
 * Errors that are not SimViolations become violations too: thrown from the core, they are
 * 'core-exception' (assertions that stay on); thrown from the simulator itself, they are reported as
 * 'core-exception' with a "simulator:" prefix so that they are never silently swallowed.
 */
import type { PlantedBug } from '../core/config.ts'
import { Prng } from '../core/prng.ts'
import { drawScenario, type Scenario } from './scenario.ts'
import type { SimStats } from './stats.ts'
import { type Invariant, SimViolation } from './violation.ts'
import { World } from './world.ts'

export interface RunOptions {
  seed: number
  plantedBugs?: readonly PlantedBug[]
  scenario?: Partial<Scenario>
  disabledInvariants?: readonly Invariant[]
  /** Streams every trace event (the --trace flag). */
  traceSink?: (line: string) => void
}

export interface Violation {
  invariant: Invariant
  detail: string
  tick: number
  trace: string[]
}

export interface RunResult {
  seed: number
  steps: number
  ticks: number
  scenario: Scenario
  stats: SimStats
  violation: Violation | undefined
}

export function runSeed(options: RunOptions): RunResult {
  const prng = new Prng(options.seed)
  const scenario = drawScenario(prng.fork(), options.scenario)
  const world = new World(prng, {
    scenario,
    plantedBugs: options.plantedBugs,
    disabledInvariants: options.disabledInvariants,
    traceSink: options.traceSink,
  })
  let violation: Violation | undefined
  try {
    world.startFounders()
    runPhases(world, scenario)
  } catch (error) {
    violation = toViolation(error, world)
  }
  return { seed: options.seed, steps: world.steps, ticks: world.now, scenario, stats: world.stats, violation }
}

/**
 * Liveness after healing: the cluster must converge (see World.livenessProblem). While it has not,
 * it must make progress (some live member applies more) at least every livenessTicksMax ticks, and
 * it must converge within livenessCapFactor * livenessTicksMax ticks in all. A stall fails fast; a
 * slow but steady catch-up (one entry per round trip when appendBytesMax is tiny) is allowed to
 * finish.
 */
export const livenessCapFactor = 5

function runPhases(world: World, scenario: Scenario): void {
  while (world.now < scenario.faultTicks) world.runTick()
  world.beginLiveness()
  const healedAt = world.now
  let progress = world.progressMark()
  let progressAt = world.now
  for (;;) {
    const problem = world.livenessProblem()
    if (problem === undefined) break
    const mark = world.progressMark()
    if (mark !== progress) {
      progress = mark
      progressAt = world.now
    }
    if (world.now - progressAt >= scenario.livenessTicksMax) {
      world.checks.fail(
        'liveness',
        `no progress for ${scenario.livenessTicksMax} ticks after healing: ${problem}`,
      )
      return
    }
    if (world.now - healedAt >= livenessCapFactor * scenario.livenessTicksMax) {
      world.checks.fail(
        'liveness',
        `not converged ${livenessCapFactor * scenario.livenessTicksMax} ticks after healing: ${problem}`,
      )
      return
    }
    world.runTick()
  }
  world.finalChecks()
}

function toViolation(error: unknown, world: World): Violation {
  const trace = world.trace.lines()
  if (error instanceof SimViolation) {
    return { invariant: error.invariant, detail: error.message, tick: world.now, trace }
  }
  const err = error instanceof Error ? error : new Error(String(error))
  const frame = (err.stack ?? '').split('\n').find((line) => line.includes('/src/raft/')) ?? ''
  const where = frame.includes('/src/raft/core/') ? '' : 'simulator: '
  return {
    invariant: 'core-exception',
    detail: `${where}${err.message}\n${frame.trim()}`,
    tick: world.now,
    trace,
  }
}
