/**
 * npm run sim -- --seeds N [--from S]      run seeds S..S+N-1 (S defaults to 1)
 * npm run sim -- --seed S [--trace]        replay one seed (--trace prints every event)
 * npm run sim -- --bug NAME ...            plant a bug (with its scenario profile), see docs/simulation.md
 * npm run sim -- --disable INVARIANT ...   do not check an invariant (to see what else catches a bug)
 * npm run sim -- --scenario '{"k":v}'      override scenario knobs (see scenario.ts)
 * npm run sim -- ... --verbose             also print passing seeds and what the runs exercised
 *
 * Prints each violation (seed, invariant, recent trace, replay command); the last line is always
 * `seeds: N, steps: M, violations: V`. Exits 1 when any seed failed, 2 on bad arguments.
 */
import { parseArgs } from 'node:util'
import { Prng } from '../core/prng.ts'
import { isPlantedBugName, type PlantedBugName, plantedBugNames, plantedBugRunOptions } from './planted.ts'
import { formatResult } from './report.ts'
import { type RunOptions, runSeed } from './run.ts'
import { drawScenario, type Scenario } from './scenario.ts'
import { addStats, emptyStats, formatStats } from './stats.ts'
import { allInvariants, type Invariant } from './violation.ts'

interface CliOptions {
  seeds: number[]
  /** Scenario overrides (JSON), applied after the drawn scenario and any bug profile. */
  scenario: Partial<Scenario>
  bugs: PlantedBugName[]
  disabled: Invariant[]
  trace: boolean
  verbose: boolean
}

function parse(argv: string[]): CliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seeds: { type: 'string' },
      from: { type: 'string' },
      seed: { type: 'string' },
      bug: { type: 'string', multiple: true },
      disable: { type: 'string', multiple: true },
      scenario: { type: 'string' },
      trace: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
    },
    strict: true,
  })
  const bugs = values.bug ?? []
  for (const bug of bugs) {
    if (!isPlantedBugName(bug)) throw new Error(`unknown bug ${bug}; one of: ${plantedBugNames.join(', ')}`)
  }
  const disabled = values.disable ?? []
  for (const name of disabled) {
    if (!(allInvariants as string[]).includes(name)) {
      throw new Error(`unknown invariant ${name}; one of: ${allInvariants.join(', ')}`)
    }
  }
  let seeds: number[]
  if (values.seed !== undefined) {
    seeds = [positiveInt(values.seed, '--seed')]
  } else {
    const count = positiveInt(values.seeds ?? '50', '--seeds')
    const from = positiveInt(values.from ?? '1', '--from')
    seeds = Array.from({ length: count }, (_, i) => from + i)
  }
  return {
    seeds,
    scenario: parseScenario(values.scenario),
    bugs: bugs as PlantedBugName[],
    disabled: disabled as Invariant[],
    trace: values.trace,
    verbose: values.verbose,
  }
}

function parseScenario(text: string | undefined): Partial<Scenario> {
  if (text === undefined) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error(`--scenario is not JSON: ${text}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('--scenario needs a JSON object of scenario knobs, e.g. \'{"clockSkew":0.6}\'')
  }
  // Every knob must exist and have the type a drawn scenario gives it.
  const sample = drawScenario(new Prng(1)) as unknown as Record<string, unknown>
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in sample))
      throw new Error(`--scenario: unknown knob ${key}; knobs: ${Object.keys(sample).join(', ')}`)
    const want = Array.isArray(sample[key]) ? 'array' : typeof sample[key]
    const got = Array.isArray(value) ? 'array' : typeof value
    if (want !== got) throw new Error(`--scenario: ${key} needs a ${want}, got ${got}`)
  }
  return parsed as Partial<Scenario>
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${text}`)
  return n
}

const usage = `usage: cairn sim [--seeds N] [--from S] | --seed S [--trace]
                 [--bug NAME]... [--disable INVARIANT]... [--scenario JSON] [--verbose]

  --seeds N          run N seeds (default 50), starting at --from (default 1)
  --seed S           replay one seed exactly
  --trace            print every event of the run
  --bug NAME         plant a bug: ${plantedBugNames.join(', ')}
  --disable NAME     skip one invariant (to see what else catches a planted bug)
  --scenario JSON    override scenario knobs, e.g. '{"clockSkew":0.6,"preVote":false}'
  --verbose, -v      print passing seeds too, and what the runs exercised

The last line is always "seeds: N, steps: M, violations: V". Exit 1 on violations, 2 on bad
arguments. See docs/simulation.md.
`

/** Runs the simulator with command-line arguments; returns the exit code. */
export function runSimCommand(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage)
    return 0
  }
  let options: CliOptions
  try {
    options = parse(argv)
  } catch (error) {
    process.stderr.write(`sim: ${(error as Error).message}\n${usage}`)
    return 2
  }
  let steps = 0
  let violations = 0
  const stats = emptyStats()
  for (const seed of options.seeds) {
    const planted = plantedBugRunOptions(options.bugs)
    const run: RunOptions = {
      seed,
      plantedBugs: planted.plantedBugs,
      scenario: { ...planted.scenario, ...options.scenario },
      disabledInvariants: options.disabled,
    }
    if (options.trace) run.traceSink = (line) => process.stdout.write(`${line}\n`)
    const result = runSeed(run)
    steps += result.steps
    addStats(stats, result.stats)
    if (result.violation !== undefined) violations++
    if (result.violation !== undefined || options.verbose) {
      const flags = { bugs: options.bugs, disabled: options.disabled, scenario: options.scenario }
      process.stdout.write(`${formatResult(result, flags)}\n`)
    }
  }
  if (options.verbose) process.stdout.write(`exercised: ${formatStats(stats)}\n`)
  process.stdout.write(`seeds: ${options.seeds.length}, steps: ${steps}, violations: ${violations}\n`)
  return violations > 0 ? 1 : 0
}
