/**
 * Small WAL appends are written on the event loop's thread while the disk is fast
 * (sync-writes.ts). Proves the policy's rule and its two ways back to the thread pool (a slow
 * average, a stall), and, on real files, that both paths write the same log: a WAL written partly
 * in place and partly through the pool replays entry for entry, and a limit of 0 never writes in
 * place.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { FileStorage } from './file-storage.ts'
import { type SyncWriteLimits, SyncWritePolicy, type SyncWriteStall } from './sync-writes.ts'
import { batch, entries, plain, TempDirs } from './test-data-dir.ts'

const limits: SyncWriteLimits = { entriesMax: 1, bytesMax: 4096, fastMs: 2, stallMs: 20, stallOffMs: 60_000 }

describe('SyncWritePolicy', () => {
  it('writes in place only appends of at most entriesMax entries in bytesMax bytes, and from the start', () => {
    const policy = new SyncWritePolicy(limits)
    expect(policy.inPlace(100, 0, 0)).toBe(true) // a hard state alone
    expect(policy.inPlace(800, 2, 0)).toBe(false)
    expect(policy.inPlace(1, 1, 0)).toBe(true)
    expect(policy.inPlace(4096, 1, 0)).toBe(true)
    expect(policy.inPlace(4097, 1, 0)).toBe(false)
    expect(new SyncWritePolicy({ ...limits, bytesMax: 0 }).inPlace(1, 1, 0)).toBe(false)
  })

  it('a slow average sends writes to the pool, and fast writes through the pool bring them back', () => {
    const policy = new SyncWritePolicy(limits)
    for (let i = 0; i < 20; i++) policy.recorded(6, true, i) // 6 ms each: slow, but no stall
    expect(policy.averageMs).toBeGreaterThan(limits.fastMs)
    expect(policy.inPlace(100, 1, 20)).toBe(false)
    let pooled = 0
    while (!policy.inPlace(100, 1, 100 + pooled)) {
      policy.recorded(0.3, false, 100 + pooled)
      pooled++
      expect(pooled).toBeLessThan(100)
    }
    expect(policy.averageMs).toBeLessThanOrEqual(limits.fastMs)
    expect(policy.counts).toEqual({ inPlace: 20, pool: pooled, stalls: 0 })
  })

  it('one write in place slower than stallMs turns writing in place off for stallOffMs', () => {
    const stalls: SyncWriteStall[] = []
    const policy = new SyncWritePolicy(limits, (stall) => stalls.push(stall))
    for (let i = 0; i < 50; i++) policy.recorded(0.2, true, i, 300)
    policy.recorded(25, true, 1_000, 310)
    expect(policy.counts.stalls).toBe(1)
    expect(stalls).toEqual([{ durationMs: 25, bytes: 310, offMs: limits.stallOffMs }])
    // The average is fast again long before the time is up, and it still waits.
    for (let i = 0; i < 50; i++) policy.recorded(0.3, false, 1_001 + i)
    expect(policy.averageMs).toBeLessThan(limits.fastMs)
    expect(policy.inPlace(100, 1, 1_000 + limits.stallOffMs - 1)).toBe(false)
    expect(policy.inPlace(100, 1, 1_000 + limits.stallOffMs)).toBe(true)
  })

  it('a slow write through the pool is no stall: its time includes the event loop delays', () => {
    const policy = new SyncWritePolicy(limits)
    const stalls: SyncWriteStall[] = []
    const policy2 = new SyncWritePolicy(limits, (stall) => stalls.push(stall))
    policy2.recorded(500, false, 10)
    expect(stalls).toEqual([])
    policy.recorded(500, false, 10)
    expect(policy.counts.stalls).toBe(0)
    for (let i = 0; i < 60; i++) policy.recorded(0.3, false, 11 + i)
    expect(policy.inPlace(100, 1, 100)).toBe(true)
  })
})

const dirs = new TempDirs()
afterEach(() => dirs.removeAll())

describe('the WAL written both ways', () => {
  it('small saves go in place, big ones through the pool, and the log replays entry for entry', async () => {
    const dir = await dirs.make()
    const storage = new FileStorage(dir)
    await storage.load()
    const written = []
    let index = 1
    for (let round = 0; round < 10; round++) {
      // One entry (in place), then a batch of 40 (the pool).
      const small = entries(index, index, 1, 100)
      const big = entries(index + 1, index + 40, 1, 200)
      index += 41
      await storage.save(batch({ entries: small, hardState: { term: 1, vote: 1, commit: index - 41 } }))
      await storage.save(batch({ entries: big }))
      written.push(...small, ...big)
    }
    // The big saves always go through the pool; the small ones in place unless the disk was slow
    // (the first one always is: the average starts at 0).
    const counts = storage.walWriteCounts
    expect(counts.inPlace + counts.pool).toBe(20)
    expect(counts.pool).toBeGreaterThanOrEqual(10)
    expect(counts.inPlace).toBeGreaterThanOrEqual(1)
    await storage.close()

    const again = new FileStorage(dir)
    const state = await again.load()
    expect(plain(state.entries)).toEqual(plain(written))
    expect(state.hardState).toEqual({ term: 1, vote: 1, commit: index - 41 })
    await again.close()
  })

  it('walSyncWriteBytesMax 0 writes every append through the pool', async () => {
    const dir = await dirs.make()
    const storage = new FileStorage(dir, { walSyncWriteBytesMax: 0 })
    await storage.load()
    for (let i = 1; i <= 5; i++) await storage.save(batch({ entries: entries(i, i, 1, 100) }))
    expect(storage.walWriteCounts).toEqual({ inPlace: 0, pool: 5, stalls: 0 })
    await storage.close()
  })
})
