/**
 * Proves the majority arithmetic the core commits and elects with: quorumSize on the boundary
 * cases, and quorumValue and voteResult against naive definitions on random inputs (fast-check).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { quorumSize, quorumValue, type VoteResult, voteResult } from './quorum.ts'
import { titled } from './test-cluster.ts'
import type { NodeId } from './types.ts'

/** The largest v such that a majority of the values are >= v (0 for no values). */
function naiveQuorumValue(values: readonly number[]): number {
  const majority = Math.floor(values.length / 2) + 1
  let best = 0
  for (const v of values) {
    const reached = values.filter((w) => w >= v).length
    if (reached >= majority && v > best) best = v
  }
  return best
}

/** Counts every possible outcome of the votes still missing. */
function naiveVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const majority = Math.floor(voters.size / 2) + 1
  let granted = 0
  let missing = 0
  for (const id of voters) {
    const vote = votes.get(id)
    if (vote === true) granted++
    if (vote === undefined) missing++
  }
  if (granted >= majority) return 'won'
  if (granted + missing < majority) return 'lost'
  return 'pending'
}

const voterIds = fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { minLength: 0, maxLength: 9 })

describe('quorumSize', () => {
  it.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
    [6, 4],
    [7, 4],
  ])('§5.2 a majority of %i voters is %i', (voters, majority) => {
    expect(quorumSize(voters)).toBe(majority)
  })
})

describe('quorumValue', () => {
  it('equals the naive "largest value a majority has reached" on random voters and values', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 50 }), { maxLength: 9 }), (values) => {
        const ids = values.map((_, i) => i + 1)
        expect(quorumValue(ids, (id) => values[id - 1] as number)).toBe(naiveQuorumValue(values))
      }),
      { numRuns: 2_000 },
    )
  })

  it.each(
    titled(
      [
        { name: 'no voters commit nothing', values: [], expected: 0 },
        { name: 'a single voter is its own quorum', values: [7], expected: 7 },
        { name: 'two of three at 5 commit 5', values: [5, 5, 1], expected: 5 },
        { name: 'one of three ahead does not count', values: [9, 2, 1], expected: 2 },
        { name: 'four voters need three', values: [8, 8, 3, 3], expected: 3 },
      ],
      (c) => `${c.name}`,
    ),
  )('%s', (_, { values, expected }) => {
    const ids = values.map((_, i) => i + 1)
    expect(quorumValue(ids, (id) => values[id - 1] as number)).toBe(expected)
  })
})

describe('voteResult', () => {
  it('equals the naive tally on random voter sets and votes, including votes from non-voters', () => {
    fc.assert(
      fc.property(
        voterIds,
        fc.array(fc.tuple(fc.integer({ min: 1, max: 15 }), fc.boolean()), { maxLength: 15 }),
        (ids, rawVotes) => {
          const voters = new Set(ids)
          const votes = new Map(rawVotes)
          expect(voteResult(voters, votes)).toBe(naiveVoteResult(voters, votes))
        },
      ),
      { numRuns: 2_000 },
    )
  })

  it('§5.2 one more granted vote never makes the outcome worse (lost < pending < won)', () => {
    const rank: Record<VoteResult, number> = { lost: 0, pending: 1, won: 2 }
    fc.assert(
      fc.property(voterIds, fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.boolean())), (ids, raw) => {
        const voters = new Set(ids)
        const votes = new Map(raw)
        const before = rank[voteResult(voters, votes)]
        for (const id of voters) {
          if (votes.has(id)) continue
          expect(rank[voteResult(voters, new Map([...votes, [id, true]]))]).toBeGreaterThanOrEqual(before)
        }
      }),
    )
  })

  it.each(
    titled(
      [
        {
          name: 'a majority of grants wins',
          voters: [1, 2, 3],
          votes: [
            [1, true],
            [2, true],
          ],
          result: 'won',
        },
        {
          name: 'a majority of rejections loses',
          voters: [1, 2, 3],
          votes: [
            [2, false],
            [3, false],
          ],
          result: 'lost',
        },
        {
          name: 'a split with votes missing is pending',
          voters: [1, 2, 3, 4],
          votes: [
            [1, true],
            [2, false],
          ],
          result: 'pending',
        },
        {
          name: 'a 2-2 tie of four voters is lost',
          voters: [1, 2, 3, 4],
          votes: [
            [1, true],
            [2, true],
            [3, false],
            [4, false],
          ],
          result: 'lost',
        },
        {
          name: 'grants from non-voters do not count',
          voters: [1, 2, 3],
          votes: [
            [1, true],
            [8, true],
            [9, true],
          ],
          result: 'pending',
        },
        { name: 'an empty voter set never wins', voters: [], votes: [[1, true]], result: 'lost' },
      ] as const,
      (c) => `${c.name}`,
    ),
  )('%s', (_, { voters, votes, result }) => {
    expect(voteResult(new Set(voters), new Map(votes as readonly (readonly [number, boolean])[]))).toBe(
      result,
    )
  })
})
