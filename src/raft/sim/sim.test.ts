/**
 * The simulator's main claim: the Raft core keeps every checked invariant (election safety, log
 * matching, leader completeness, state machine safety, durability, read linearizability, liveness
 * after healing) over 500 seeded runs of 3-, 5- and 7-node clusters under drops, duplicates,
 * reordering, partitions of every shape, clean, torn and lossy crashes, membership changes and
 * leadership transfers. Also: runs are deterministic, and the faults really were exercised.
 */
import { describe, expect, it } from 'vitest'
import { formatResult } from './report.ts'
import { runSeed } from './run.ts'
import { addStats, emptyStats } from './stats.ts'

const seedCount = 500

describe('simulation', () => {
  it(`keeps every invariant over ${seedCount} seeds`, () => {
    const failures: string[] = []
    const stats = emptyStats()
    const clusterSizes = new Set<number>()
    for (let seed = 1; seed <= seedCount; seed++) {
      const result = runSeed({ seed })
      addStats(stats, result.stats)
      clusterSizes.add(result.scenario.nodeCount)
      if (result.violation !== undefined) failures.push(formatResult(result))
    }
    expect(failures.join('\n\n')).toBe('')
    expect([...clusterSizes].sort()).toEqual([3, 5, 7])
    // A green run proves little unless the faults happened.
    for (const key of [
      'writesAcked',
      'readsAnswered',
      'crashesClean',
      'crashesTorn',
      'tornWritesPartial',
      'crashesLossy',
      'partitions',
      'snapshotsDelivered',
      'learnersPromoted',
      'votersRemoved',
      'leadersRemoved',
      'transfersAsked',
      'readiesDeferred',
    ] as const) {
      expect(stats[key], key).toBeGreaterThan(0)
    }
  })

  it('replays a seed exactly', () => {
    for (const seed of [3, 17]) {
      const a = runSeed({ seed })
      const b = runSeed({ seed })
      expect(b.stats).toEqual(a.stats)
      expect(b.violation).toEqual(a.violation)
    }
  })
})
