/**
 * Proves the simulated disk follows the Ready contract's persistence rules: steps in order
 * (snapshot, entries, hard state), writing entry i deletes everything at or after i, a snapshot
 * replaces the log (the stored commit stays as persisted: the core lifts it on load), compaction drops the prefix, a torn
 * write keeps a prefix of the steps, and the planted storage bug loses the last entry on restart only.
 */
import { describe, expect, it } from 'vitest'
import { bootstrapState } from '../core/bootstrap.ts'
import type { Entry, Ready, Snapshot } from '../core/types.ts'
import { persistSteps, SimDisk } from './disk.ts'
import { tornPrefix } from './sim-node.ts'
import { SimViolation } from './violation.ts'

function entry(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new Uint8Array([index]) }
}

function ready(over: Partial<Ready>): Ready {
  return {
    softState: undefined,
    hardState: undefined,
    snapshot: undefined,
    entries: [],
    committedEntries: [],
    messages: [],
    readStates: [],
    mustSync: false,
    ...over,
  }
}

function snapshot(index: number, term: number): Snapshot {
  return { meta: { index, term, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array() }
}

function persistAll(disk: SimDisk, rd: Ready): void {
  for (const step of persistSteps(rd)) disk.persist(step)
}

describe('SimDisk', () => {
  it('lists persistence steps in contract order', () => {
    const rd = ready({
      snapshot: snapshot(5, 2),
      entries: [entry(6, 2), entry(7, 2)],
      hardState: { term: 2, vote: 1, commit: 5 },
    })
    expect(persistSteps(rd).map((s) => s.kind)).toEqual(['snapshot', 'entry', 'entry', 'hardState'])
  })

  it('appends, and truncates everything from the first rewritten index', () => {
    const disk = new SimDisk(bootstrapState([1, 2, 3]))
    persistAll(disk, ready({ entries: [entry(4, 2), entry(5, 2), entry(6, 2)] }))
    expect(disk.lastIndex).toBe(6)
    persistAll(disk, ready({ entries: [entry(5, 3)] }))
    expect(disk.lastIndex).toBe(5)
    expect(disk.termAt(5)).toBe(3)
    expect(disk.termAt(4)).toBe(2)
  })

  it('rejects an entry that would leave a gap', () => {
    const disk = new SimDisk(bootstrapState([1, 2, 3]))
    expect(() => persistAll(disk, ready({ entries: [entry(9, 2)] }))).toThrow(SimViolation)
  })

  it('replaces the log with a received snapshot and keeps the stored hard state as persisted', () => {
    const disk = new SimDisk(bootstrapState([1, 2, 3]))
    disk.persist({ kind: 'snapshot', snapshot: snapshot(10, 4) })
    expect(disk.logStart).toEqual({ index: 10, term: 4 })
    expect(disk.lastIndex).toBe(10)
    expect(disk.hardState.commit).toBe(3) // torn before the hard state: the core lifts it on load
    const loaded = disk.load(true)
    expect(loaded.entries).toEqual([])
    expect(loaded.snapshot?.meta.index).toBe(10)
  })

  it('compacts behind an application snapshot', () => {
    const disk = new SimDisk(bootstrapState([1, 2, 3]))
    persistAll(
      disk,
      ready({ entries: [entry(4, 2), entry(5, 2)], hardState: { term: 2, vote: 1, commit: 5 } }),
    )
    disk.persistCompaction({ snapshot: snapshot(5, 2), logStart: { index: 4, term: 2 } })
    expect(disk.logStart).toEqual({ index: 4, term: 2 })
    expect(disk.snapshot?.meta.index).toBe(5)
    expect(disk.load(true).entries.map((e) => e.index)).toEqual([5])
  })

  it('keeps only the first steps of a torn write', () => {
    const disk = new SimDisk(bootstrapState([1, 2, 3]))
    const rd = ready({ entries: [entry(4, 2), entry(5, 2)], hardState: { term: 2, vote: 2, commit: 3 } })
    const steps = persistSteps(rd)
    const kept = tornPrefix(0.5, steps.length)
    expect(kept).toBeGreaterThan(0)
    expect(kept).toBeLessThan(steps.length)
    for (const step of steps.slice(0, kept)) disk.persist(step)
    expect(disk.lastIndex).toBe(3 + Math.min(kept, 2))
    expect(disk.hardState).toEqual({ term: 1, vote: 0, commit: 3 })
  })

  it('tornPrefix keeps at least one and loses at least one step of two or more', () => {
    for (const steps of [2, 3, 10]) {
      for (const draw of [0, 0.3, 0.999]) {
        const kept = tornPrefix(draw, steps)
        expect(kept).toBeGreaterThanOrEqual(1)
        expect(kept).toBeLessThan(steps)
      }
    }
    expect([tornPrefix(0.1, 1), tornPrefix(0.9, 1)]).toEqual([0, 1])
  })

  it('hands out copies: changing a loaded state does not change the disk', () => {
    const disk = new SimDisk(bootstrapState([1, 2, 3]))
    const loaded = disk.load(false)
    loaded.entries.pop()
    loaded.hardState.term = 99
    expect(disk.lastIndex).toBe(3)
    expect(disk.hardState.term).toBe(1)
  })

  it('the planted storage bug loses the last entry on restart, not on first start', () => {
    const disk = new SimDisk(bootstrapState([1, 2, 3]), true)
    expect(disk.load(false).entries).toHaveLength(3)
    expect(disk.load(true).entries).toHaveLength(2)
    expect(disk.lastIndex).toBe(2)
  })
})
