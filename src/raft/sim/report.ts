/**
 * Human-readable results: a violation prints its seed, invariant, detail, the scenario, the last
 * trace events and the one command that replays it.
 */
import type { PlantedBugName } from './planted.ts'
import type { RunResult } from './run.ts'
import type { Scenario } from './scenario.ts'
import type { Invariant } from './violation.ts'

/** What besides the seed a replay needs: the CLI flags of the run. */
export interface ReplayFlags {
  bugs?: readonly PlantedBugName[]
  disabled?: readonly Invariant[]
  /** Scenario overrides given with --scenario. */
  scenario?: Partial<Scenario>
}

export function replayCommand(seed: number, flags: ReplayFlags = {}): string {
  const parts = [
    ...(flags.bugs ?? []).map((b) => ` --bug ${b}`),
    ...(flags.disabled ?? []).map((i) => ` --disable ${i}`),
  ]
  if (flags.scenario !== undefined && Object.keys(flags.scenario).length > 0) {
    parts.push(` --scenario '${JSON.stringify(flags.scenario)}'`)
  }
  return `npm run sim -- --seed ${seed}${parts.join('')}`
}

export function describeScenario(s: Scenario): string {
  return [
    `${s.nodeCount} nodes (max ${s.nodesMax})`,
    `election ${s.electionTicks}/heartbeat ${s.heartbeatTicks} ticks`,
    `preVote ${s.preVote}, checkQuorum ${s.checkQuorum}`,
    `drop ${pct(s.dropProbability)}, dup ${pct(s.duplicateProbability)}, delay ${s.delayTicksMin}+exp(${s.delayTicksMean.toFixed(1)})`,
    `partitions ${pct(s.partitionProbability)}/tick [${s.partitionShapes.join(',')}]`,
    `crashes ${pct(s.crashProbability)}/tick (torn ${pct(s.tornWriteProbability)}, lossy ${pct(s.lossyCrashProbability)})`,
    `clock skew ${pct(s.clockSkew)}, deferred Readies ${pct(s.readyDeferProbability)}`,
    `membership ${pct(s.membershipProbability)}, transfers ${pct(s.transferProbability)}`,
    `${s.clientCount} clients, reads ${pct(s.readFraction)}, snapshot every ${s.snapshotEveryEntries}`,
  ].join('; ')
}

export function formatResult(result: RunResult, flags: ReplayFlags = {}): string {
  const v = result.violation
  if (v === undefined) return `ok seed ${result.seed}: ${result.ticks} ticks, ${result.steps} steps`
  return [
    `VIOLATION seed ${result.seed}: ${v.invariant} at tick ${v.tick}`,
    `  ${v.detail.split('\n').join('\n  ')}`,
    `  scenario: ${describeScenario(result.scenario)}`,
    `  last ${v.trace.length} events:`,
    ...v.trace.map((line) => `    ${line}`),
    `  replay: ${replayCommand(result.seed, flags)}`,
  ].join('\n')
}

function pct(p: number): string {
  return `${(p * 100).toFixed(p > 0 && p < 0.01 ? 2 : 1)}%`
}
