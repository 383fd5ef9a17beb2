/**
 * Proves the replay rules on records alone: truncation at i drops the old tail, a leader's
 * snapshot restarts the log, compaction keeps what follows it and checks the term, a replay that
 * starts after deleted segments leaves a gap that only a covering compaction may close, holes and
 * out-of-place records are refused with a reason, and later segment headers must match.
 */
import { describe, expect, it } from 'vitest'
import type { SegmentHeader } from './payload.ts'
import { Replay } from './replay.ts'
import { entries } from './test-data-dir.ts'

function header(partial: Partial<SegmentHeader> = {}): SegmentHeader {
  return {
    seq: 1,
    hardState: { term: 0, vote: 0, commit: 0 },
    logStart: { index: 0, term: 0 },
    lastIndex: 0,
    ...partial,
  }
}

function indexesOf(r: Replay): number[] {
  const done = r.finish()
  if (typeof done === 'string') throw new Error(done)
  return done.entries.map((e) => e.index)
}

describe('Replay', () => {
  it('a later record at index i drops every entry >= i', () => {
    const r = new Replay(header())
    expect(r.applyEntries(entries(1, 10, 1))).toBeUndefined()
    expect(r.applyEntries(entries(4, 5, 2))).toBeUndefined()
    expect(indexesOf(r)).toEqual([1, 2, 3, 4, 5])
    expect(r.entries[3]!.term).toBe(2)
  })

  it('refuses holes and entries at or behind the log start', () => {
    const r = new Replay(header({ logStart: { index: 5, term: 1 }, lastIndex: 5 }))
    expect(r.applyEntries(entries(7, 7, 1))).toBe('entry 7 leaves a hole after 5')
    expect(r.applyEntries(entries(5, 5, 1))).toBe('entry 5 at or behind the log start 5')
  })

  it('a snapshot restarts the log after it', () => {
    const r = new Replay(header())
    r.applyEntries(entries(1, 10, 1))
    expect(r.applySnapshot({ index: 50, term: 3 })).toBeUndefined()
    r.applyEntries(entries(51, 52, 3))
    expect(r.finish()).toMatchObject({ logStart: { index: 50, term: 3 } })
    expect(indexesOf(r)).toEqual([51, 52])
  })

  it('compaction keeps the entries after it and checks the term at its index', () => {
    const r = new Replay(header())
    r.applyEntries(entries(1, 10, 1))
    expect(r.applyCompaction({ index: 4, term: 2 })).toBe(
      'compaction to 4 at term 2, but the entry has term 1',
    )
    expect(r.applyCompaction({ index: 11, term: 1 })).toBe('compaction to 11 beyond the last entry 10')
    expect(r.applyCompaction({ index: 4, term: 1 })).toBeUndefined()
    expect(r.applyCompaction({ index: 3, term: 1 })).toBe('compaction to 3 behind the log start 4')
    expect(indexesOf(r)).toEqual([5, 6, 7, 8, 9, 10])
  })

  it('starting after deleted segments, the unknown prefix closes only with a covering compaction', () => {
    // The oldest remaining segment was created when the log held 11..40 (start 10).
    const r = new Replay(header({ logStart: { index: 10, term: 1 }, lastIndex: 40 }))
    expect(r.prefixKnown).toBe(false)
    expect(r.applyEntries(entries(41, 45, 1))).toBeUndefined()
    // A truncation reaching into the unknown part moves the known part down.
    expect(r.applyEntries(entries(35, 36, 2))).toBeUndefined()
    expect(r.applyCompaction({ index: 20, term: 1 })).toBeUndefined()
    expect(r.finish()).toBe('entries 21..34 are missing (a deleted or lost segment)')
    expect(r.applyCompaction({ index: 34, term: 1 })).toBeUndefined()
    expect(indexesOf(r)).toEqual([35, 36])
  })

  it('a later segment header must describe the replayed state', () => {
    const r = new Replay(header())
    r.applyEntries(entries(1, 3, 1))
    r.applyHardState({ term: 1, vote: 2, commit: 3 })
    const same = header({ seq: 2, hardState: { term: 1, vote: 2, commit: 3 }, lastIndex: 3 })
    expect(r.checkHeader(same)).toBeUndefined()
    expect(r.checkHeader({ ...same, lastIndex: 4 })).toMatch(/does not match the replayed state/)
  })
})
