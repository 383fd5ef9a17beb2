/**
 * The planted bugs that prove the simulator can fail, each with the scenario knobs that make it
 * likely to show and the invariants it is expected to break.
 *
 * Three are core bugs (RaftConfig.plantedBugs); the fourth is a storage bug of the simulated disk
 * (on restart it drops its last persisted entry). The CLI's --bug flag and planted-bugs.test.ts
 * both use these profiles, so a seed reported by the test replays exactly from the command line.
 */
import type { PlantedBug } from '../core/config.ts'
import type { RunOptions } from './run.ts'
import type { Scenario } from './scenario.ts'
import type { Invariant } from './violation.ts'

export const plantedBugNames = [
  'voteTwiceInTerm',
  'commitOldTermByCount',
  'readWithoutQuorum',
  'loseLastEntryOnRestart',
] as const

export type PlantedBugName = (typeof plantedBugNames)[number]

export interface PlantedBugProfile {
  /** The violation kinds this bug is expected to cause first. */
  expected: Invariant[]
  /** Knobs that make the bug likely to show. */
  scenario: Partial<Scenario>
  /**
   * With the direct check of `expected` disabled, the deeper invariants that must still catch the
   * bug (shows the shortcut check is not the only line of defence).
   */
  deeper?: { disabled: Invariant[]; expected: Invariant[] }
}

/** Heavy churn for Raft figure 8: one entry per append, no pipelining, crashes and isolation. */
const figure8Knobs: Partial<Scenario> = {
  nodeCount: 3,
  electionTicks: 8,
  preVote: false,
  checkQuorum: false,
  appendBytesMax: 1,
  inflightMsgsMax: 1,
  dropProbability: 0.3,
  crashProbability: 0.2,
  restartTicksMax: 10,
  partitionProbability: 0.2,
  partitionTicksMax: 30,
  partitionShapes: ['isolateLeader', 'isolateNode'],
  clientCount: 4,
  requestProbability: 0.9,
  readFraction: 0,
}

export const plantedBugProfiles: Record<PlantedBugName, PlantedBugProfile> = {
  voteTwiceInTerm: {
    expected: ['vote-once'],
    scenario: { preVote: false, checkQuorum: false, dropProbability: 0.1, crashProbability: 0.01 },
    deeper: { disabled: ['vote-once'], expected: ['election-safety'] },
  },
  commitOldTermByCount: {
    expected: ['leader-completeness'],
    scenario: figure8Knobs,
    deeper: { disabled: ['leader-completeness'], expected: ['state-machine-safety', 'acked-write-lost'] },
  },
  readWithoutQuorum: {
    expected: ['read-linearizability'],
    scenario: {
      partitionProbability: 0.05,
      partitionShapes: ['isolateLeader'],
      readFraction: 0.7,
      requestProbability: 0.8,
      clientCount: 5,
    },
  },
  loseLastEntryOnRestart: {
    expected: ['durability'],
    scenario: { storageLosesLastEntry: true, crashProbability: 0.02 },
    deeper: {
      disabled: ['durability'],
      // The core's own assertion ("commit beyond last index: log lost?") usually fires first.
      expected: [
        'core-exception',
        'peer-protocol',
        'leader-completeness',
        'state-machine-safety',
        'acked-write-lost',
      ],
    },
  },
}

export function isPlantedBugName(name: string): name is PlantedBugName {
  return (plantedBugNames as readonly string[]).includes(name)
}

/** Run options planting these bugs, with their profiles' knobs merged in order. */
export function plantedBugRunOptions(
  bugs: readonly PlantedBugName[],
): Pick<RunOptions, 'plantedBugs' | 'scenario'> {
  const plantedBugs: PlantedBug[] = []
  let scenario: Partial<Scenario> = {}
  for (const bug of bugs) {
    if (bug !== 'loseLastEntryOnRestart') plantedBugs.push(bug)
    scenario = { ...scenario, ...plantedBugProfiles[bug].scenario }
  }
  return { plantedBugs, scenario }
}
