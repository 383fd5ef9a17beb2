/**
 * Proves RaftLog's index arithmetic and the follower side of AppendEntries: term lookups around the
 * compaction point, byte-limited slices, §5.3 conflict handling in maybeAppend, the fast-backtracking
 * hint (findConflictByTerm), stableTo ignoring acknowledgements for a log that changed, compaction
 * that keeps retained and unpersisted entries, and restore from a snapshot.
 */
import { describe, expect, it } from 'vitest'
import { entryBytes, entryOverheadBytes, RaftLog } from './log.ts'
import { titled } from './test-cluster.ts'
import type { Entry, Snapshot } from './types.ts'

function ent(index: number, term: number, dataBytes = 0): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(dataBytes) }
}

/** A log whose entry i (1-based, after `start`) has terms[i - 1]; everything persisted. */
function logOf(
  terms: number[],
  options: { start?: { index: number; term: number }; committed?: number } = {},
) {
  const start = options.start ?? { index: 0, term: 0 }
  const entries = terms.map((term, i) => ent(start.index + 1 + i, term))
  return new RaftLog(start, entries, options.committed ?? start.index, start.index, undefined)
}

function snap(index: number, term: number): Snapshot {
  return { meta: { index, term, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) }
}

function termsOf(log: RaftLog): number[] {
  return (log.slice(log.firstIndex(), log.lastIndex() + 1) ?? []).map((e) => e.term)
}

describe('RaftLog.term', () => {
  const log = logOf([2, 2, 3], { start: { index: 5, term: 1 }, committed: 5 })

  it.each(
    titled(
      [
        { index: 4, expected: undefined, why: 'compacted away' },
        { index: 5, expected: 1, why: 'the compaction point keeps its term' },
        { index: 6, expected: 2, why: 'first entry' },
        { index: 8, expected: 3, why: 'last entry' },
        { index: 9, expected: undefined, why: 'beyond the log' },
      ],
      (c) => `term(${c.index}) is ${c.expected} (${c.why})`,
    ),
  )('%s', (_, { index, expected }) => {
    expect(log.term(index)).toBe(expected)
  })

  it('reports first, last index and last term around the compaction point', () => {
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm()]).toEqual([6, 8, 3])
    expect(logOf([], { start: { index: 5, term: 4 }, committed: 5 }).lastTerm()).toBe(4)
  })
})

describe('RaftLog.isUpToDate (§5.4.1)', () => {
  // Our log ends at index 5 with term 2.
  const log = logOf([1, 1, 2, 2, 2])

  it.each(
    titled(
      [
        { lastTerm: 3, lastIndex: 1, upToDate: true, why: 'a higher last term wins whatever the length' },
        { lastTerm: 2, lastIndex: 6, upToDate: true, why: 'same last term, longer' },
        { lastTerm: 2, lastIndex: 5, upToDate: true, why: 'same last term, same length' },
        { lastTerm: 2, lastIndex: 4, upToDate: false, why: 'same last term, shorter' },
        { lastTerm: 1, lastIndex: 99, upToDate: false, why: 'a lower last term loses whatever the length' },
      ],
      (c) => `candidate (lastTerm ${c.lastTerm}, lastIndex ${c.lastIndex}): ${c.upToDate} (${c.why})`,
    ),
  )('%s', (_, c) => {
    expect(log.isUpToDate(c.lastIndex, c.lastTerm)).toBe(c.upToDate)
  })
})

describe('RaftLog.slice', () => {
  // Five entries of 10 data bytes: each accounts for 10 + overhead bytes.
  const size = 10 + entryOverheadBytes
  const log = new RaftLog(
    { index: 0, term: 0 },
    [1, 2, 3, 4, 5].map((i) => ent(i, 1, 10)),
    0,
    0,
    undefined,
  )

  it.each(
    titled(
      [
        { bytesMax: Number.POSITIVE_INFINITY, count: 5, why: 'no limit' },
        { bytesMax: 2 * size, count: 2, why: 'exactly two entries fit' },
        { bytesMax: 2 * size + size - 1, count: 2, why: 'the third would exceed by one byte' },
        { bytesMax: 1, count: 1, why: 'one entry is always returned even past the limit' },
        { bytesMax: 0, count: 1, why: 'even with a zero limit' },
      ],
      (c) => `slice(1, 6, ${c.bytesMax}) returns ${c.count} entries (${c.why})`,
    ),
  )('%s', (_, { bytesMax, count }) => {
    const out = log.slice(1, 6, bytesMax) ?? []
    expect(out.map((e) => e.index)).toEqual([1, 2, 3, 4, 5].slice(0, count))
    expect(entryBytes(out[0] as Entry)).toBe(size)
  })

  it('an empty range is empty, and a range starting at or behind the compaction point is undefined', () => {
    expect(log.slice(3, 3)).toEqual([])
    expect(log.slice(6, 6)).toEqual([])
    const compacted = logOf([1, 1], { start: { index: 4, term: 1 }, committed: 4 })
    expect(compacted.slice(4, 6)).toBeUndefined()
    expect(compacted.slice(5, 7)?.map((e) => e.index)).toEqual([5, 6])
  })

  it('a range beyond the last index is a programmer error', () => {
    expect(() => log.slice(1, 7)).toThrow(/beyond last index/)
  })
})

describe('RaftLog.maybeAppend (§5.3)', () => {
  // Our log: indices 1..3 with terms 1, 2, 3; index 1 committed.
  it.each(
    titled(
      [
        {
          name: 'rejects when the previous entry has another term',
          prev: [3, 2],
          commit: 3,
          entries: [ent(4, 4)],
          result: undefined,
          terms: [1, 2, 3],
          committed: 1,
        },
        {
          name: 'rejects when the previous entry is beyond our log',
          prev: [4, 3],
          commit: 3,
          entries: [ent(5, 4)],
          result: undefined,
          terms: [1, 2, 3],
          committed: 1,
        },
        {
          name: 'accepts a heartbeat-like append and advances commit',
          prev: [3, 3],
          commit: 3,
          entries: [],
          result: 3,
          terms: [1, 2, 3],
          committed: 3,
        },
        {
          name: 'commit never passes the last entry this append vouches for',
          prev: [2, 2],
          commit: 3,
          entries: [],
          result: 2,
          terms: [1, 2, 3],
          committed: 2,
        },
        {
          name: 'appends new entries after the previous one',
          prev: [3, 3],
          commit: 4,
          entries: [ent(4, 4), ent(5, 4)],
          result: 5,
          terms: [1, 2, 3, 4, 4],
          committed: 4,
        },
        {
          name: 'entries already present are not rewritten, and the tail after them stays',
          prev: [1, 1],
          commit: 1,
          entries: [ent(2, 2)],
          result: 2,
          terms: [1, 2, 3],
          committed: 1,
        },
        {
          name: 'a conflicting entry and everything after it are replaced',
          prev: [1, 1],
          commit: 1,
          entries: [ent(2, 4)],
          result: 2,
          terms: [1, 4],
          committed: 1,
        },
        {
          name: 'a conflict in the middle of the batch keeps the matching prefix',
          prev: [1, 1],
          commit: 2,
          entries: [ent(2, 2), ent(3, 4), ent(4, 4)],
          result: 4,
          terms: [1, 2, 4, 4],
          committed: 2,
        },
      ],
      (c) => `${c.name}`,
    ),
  )('%s', (_, { prev, commit, entries, result, terms, committed }) => {
    const log = logOf([1, 2, 3], { committed: 1 })
    expect(log.maybeAppend(prev[0] as number, prev[1] as number, commit, entries)).toBe(result)
    expect(termsOf(log)).toEqual(terms)
    expect(log.committed).toBe(committed)
  })

  it('a truncation marks the replaced entries unpersisted', () => {
    const log = logOf([1, 2, 3], { committed: 1 })
    expect(log.persistedIndex).toBe(3)
    log.maybeAppend(1, 1, 1, [ent(2, 4)])
    expect(log.persistedIndex).toBe(1)
    expect(log.unstableEntries().map((e) => [e.index, e.term])).toEqual([[2, 4]])
  })

  it('truncating a committed entry is a safety violation and throws', () => {
    const log = logOf([1, 2, 3], { committed: 2 })
    expect(() => log.maybeAppend(1, 1, 2, [ent(2, 4)])).toThrow(/truncating committed entry/)
  })

  it('append refuses a gap after the last index', () => {
    const log = logOf([1, 2, 3])
    expect(() => log.append([ent(5, 3)])).toThrow(/gap/)
  })
})

describe('RaftLog.findConflictByTerm (fast backtracking hint)', () => {
  // Indices 1..7 with terms 1, 1, 3, 3, 3, 5, 5.
  const log = logOf([1, 1, 3, 3, 3, 5, 5])
  it.each(
    titled(
      [
        { index: 7, term: 5, expected: 7, why: 'the entry itself qualifies' },
        { index: 7, term: 4, expected: 5, why: 'skips the whole term 5 run' },
        { index: 7, term: 3, expected: 5, why: 'the last entry of term 3' },
        { index: 7, term: 2, expected: 2, why: 'skips terms 5 and 3' },
        { index: 7, term: 0, expected: 0, why: 'falls back to the compaction point' },
        { index: 20, term: 4, expected: 5, why: 'an index beyond the log is clamped to the last index' },
        { index: 4, term: 1, expected: 2, why: 'starts from the given index, not the end' },
      ],
      (c) => `findConflictByTerm(${c.index}, ${c.term}) = ${c.expected} (${c.why})`,
    ),
  )('%s', (_, { index, term, expected }) => {
    expect(log.findConflictByTerm(index, term)).toBe(expected)
  })

  it('stops at the compaction point even when its term is higher', () => {
    const compacted = logOf([3, 3, 5], { start: { index: 3, term: 3 }, committed: 3 })
    expect(compacted.findConflictByTerm(6, 1)).toBe(3)
  })
})

describe('RaftLog.stableTo', () => {
  it('records entries as durable up to the acknowledged index', () => {
    const log = logOf([1, 1, 1])
    log.append([ent(4, 2), ent(5, 2)])
    expect(log.persistedIndex).toBe(3)
    log.stableTo(4, 2)
    expect(log.persistedIndex).toBe(4)
    expect(log.unstableEntries().map((e) => e.index)).toEqual([5])
  })

  it.each(
    titled(
      [
        { name: 'an index the truncation removed', index: 5, term: 2 },
        { name: 'an index whose entry was replaced by another term', index: 4, term: 2 },
      ],
      (c) => `ignores an acknowledgement for ${c.name}`,
    ),
  )('%s', (_, { index, term }) => {
    const log = logOf([1, 1, 1])
    log.append([ent(4, 2), ent(5, 2)]) // handed to the driver in a Ready ...
    log.append([ent(4, 3)]) // ... and replaced before that Ready was advanced
    log.stableTo(index, term)
    expect(log.persistedIndex).toBe(3)
    expect(log.unstableEntries().map((e) => [e.index, e.term])).toEqual([[4, 3]])
  })

  it('never moves backwards', () => {
    const log = logOf([1, 1, 1])
    log.stableTo(2, 1)
    expect(log.persistedIndex).toBe(3)
  })
})

describe('RaftLog.compact', () => {
  function appliedLog(count: number): RaftLog {
    const log = logOf(Array.from({ length: count }, () => 1))
    log.commitTo(count)
    log.appliedTo(count)
    return log
  }

  it.each(
    titled(
      [
        { retained: 0, startIndex: 8 },
        { retained: 3, startIndex: 5 },
        { retained: 8, startIndex: 0 },
        { retained: 100, startIndex: 0 },
      ],
      (c) =>
        `a snapshot at 8 with ${c.retained} retained entries moves the compaction point to ${c.startIndex}`,
    ),
  )('%s', (_, c) => {
    const log = appliedLog(10)
    const snapshot = snap(8, 1)
    log.compact(snapshot, c.retained)
    expect(log.startIndex).toBe(c.startIndex)
    expect(log.snapshot).toBe(snapshot)
    expect(log.lastIndex()).toBe(10)
    expect(log.term(c.startIndex)).toBe(c.startIndex === 0 ? 0 : 1)
    if (c.startIndex > 0) expect(log.term(c.startIndex - 1)).toBeUndefined()
  })

  it('never drops entries that are not yet persisted', () => {
    const log = logOf([1, 1, 1, 1, 1])
    log.append([6, 7, 8].map((i) => ent(i, 2)))
    log.commitTo(8)
    log.appliedTo(8)
    log.compact(snap(8, 2), 0)
    expect(log.startIndex).toBe(5)
    expect(log.unstableEntries().map((e) => e.index)).toEqual([6, 7, 8])
  })

  it('refuses a snapshot beyond applied or with the wrong term', () => {
    const log = appliedLog(5)
    expect(() => log.compact(snap(6, 1), 0)).toThrow(/beyond applied/)
    expect(() => log.compact(snap(5, 2), 0)).toThrow(/term does not match/)
  })

  it('a later compaction that would keep more entries never moves the compaction point back', () => {
    const log = appliedLog(10)
    log.compact(snap(8, 1), 0)
    log.compact(snap(8, 1), 5)
    expect(log.startIndex).toBe(8)
  })
})

describe('RaftLog.restore and nextCommittedEntries', () => {
  it('restore replaces the log with the snapshot and marks it pending', () => {
    const log = logOf([1, 1, 2], { committed: 1 })
    const snapshot = snap(10, 4)
    log.restore(snapshot)
    expect([log.startIndex, log.lastIndex(), log.lastTerm(), log.committed]).toEqual([10, 10, 4, 10])
    expect(log.pendingSnapshot).toBe(snapshot)
    expect(log.unstableEntries()).toEqual([])
  })

  it('restoring a snapshot behind commit is a programmer error', () => {
    const log = logOf([1, 1, 2], { committed: 3 })
    expect(() => log.restore(snap(2, 1))).toThrow(/behind commit/)
  })

  it('hands out committed, unapplied entries up to the byte limit (at least one)', () => {
    const log = new RaftLog(
      { index: 0, term: 0 },
      [1, 2, 3, 4].map((i) => ent(i, 1, 100)),
      0,
      0,
      undefined,
    )
    log.commitTo(3)
    expect(log.nextCommittedEntries(Number.POSITIVE_INFINITY).map((e) => e.index)).toEqual([1, 2, 3])
    expect(log.nextCommittedEntries(1).map((e) => e.index)).toEqual([1])
    log.appliedTo(3)
    expect(log.nextCommittedEntries(Number.POSITIVE_INFINITY)).toEqual([])
    expect(() => log.appliedTo(4)).toThrow(/beyond commit/)
  })
})
