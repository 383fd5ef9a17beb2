import v8 from 'node:v8'
import { describe, expect, it } from 'vitest'
import {
  collectCompacting,
  type IdleGcLimits,
  IdleGcPolicy,
  idleGcCounts,
  idleGcLimits,
  startIdleGc,
} from './idle-gc.ts'
import { createAgentLogger } from './logger.ts'

const MiB = 1024 * 1024
const quiet = 0.001
const busy = 0.5

describe('IdleGcPolicy', () => {
  it('collects after the quiet samples once the heap grew past both thresholds', () => {
    const policy = new IdleGcPolicy(100 * MiB)
    expect(policy.sample(quiet, 200 * MiB)).toBe(false) // one quiet sample is not enough
    expect(policy.sample(quiet, 200 * MiB)).toBe(true)
  })

  it('never collects while the loop is busy, however large the heap', () => {
    const policy = new IdleGcPolicy(100 * MiB)
    for (let i = 0; i < 10; i++) expect(policy.sample(busy, 1_000 * MiB)).toBe(false)
    // A busy sample between quiet ones starts the count again.
    expect(policy.sample(quiet, 1_000 * MiB)).toBe(false)
    expect(policy.sample(busy, 1_000 * MiB)).toBe(false)
    expect(policy.sample(quiet, 1_000 * MiB)).toBe(false)
    expect(policy.sample(quiet, 1_000 * MiB)).toBe(true)
  })

  it('needs both the absolute and the relative growth', () => {
    // 400 MiB baseline: 32 MiB more is under half of it.
    const large = new IdleGcPolicy(400 * MiB)
    large.sample(quiet, 440 * MiB)
    expect(large.sample(quiet, 440 * MiB)).toBe(false)
    expect(large.sample(quiet, 600 * MiB)).toBe(true)
    // 10 MiB baseline: doubling it is under 32 MiB.
    const small = new IdleGcPolicy(10 * MiB)
    small.sample(quiet, 30 * MiB)
    expect(small.sample(quiet, 30 * MiB)).toBe(false)
    expect(small.sample(quiet, 43 * MiB)).toBe(true)
  })

  it('takes the smallest heap seen as the baseline, and what a collection left after one', () => {
    const policy = new IdleGcPolicy(300 * MiB)
    policy.sample(busy, 80 * MiB) // V8 collected on its own
    expect(policy.baselineBytes).toBe(80 * MiB)
    policy.sample(quiet, 130 * MiB)
    expect(policy.sample(quiet, 130 * MiB)).toBe(true)
    policy.collected(90 * MiB)
    expect(policy.baselineBytes).toBe(90 * MiB)
    // The quiet count starts again after a collection, and the heap left is no longer growth.
    expect(policy.sample(quiet, 90 * MiB)).toBe(false)
    expect(policy.sample(quiet, 90 * MiB)).toBe(false)
    expect(policy.sample(quiet, 140 * MiB)).toBe(true)
  })

  it('counts quiet samples again after an interrupted preparation', () => {
    const policy = new IdleGcPolicy(100 * MiB)
    policy.sample(quiet, 200 * MiB)
    expect(policy.sample(quiet, 200 * MiB)).toBe(true)
    policy.interrupted()
    expect(policy.sample(quiet, 200 * MiB)).toBe(false)
    expect(policy.sample(quiet, 200 * MiB)).toBe(true)
  })
})

/** Allocates about `mib` MiB of small objects and strings and drops them: garbage in old space. */
function makeGarbage(mib: number): number {
  let kept: { s: string; n: number }[] = []
  for (let i = 0; i < mib * 10_000; i++) kept.push({ s: `value-${i}-`.padEnd(64, 'x'), n: i })
  const count = kept.length
  kept = []
  return count
}

describe('collectCompacting (the real V8 heap)', () => {
  it('frees garbage that survived into old space', () => {
    makeGarbage(64)
    const result = collectCompacting()
    expect(result.beforeBytes - result.afterBytes).toBeGreaterThan(32 * MiB)
  })
})

describe('startIdleGc', () => {
  it('collects by itself once the process is quiet and the heap has grown', async () => {
    const limits: IdleGcLimits = {
      ...idleGcLimits,
      sampleMs: 20,
      quietUtilizationMax: 0.5,
      growthBytesMin: 16 * MiB,
      youngCollections: 4,
      youngSpacingMs: 5,
      preparingUtilizationMax: 0.5,
    }
    const before = { ...idleGcCounts() }
    const idle = startIdleGc(createAgentLogger('error', 'idle-gc-test'), limits)
    try {
      // V8 may collect a round of garbage itself (an incremental cycle already under way): then
      // there is nothing to give back, and the next round is made.
      const deadline = Date.now() + 10_000
      while (idle.collections === 0 && Date.now() < deadline) {
        makeGarbage(64)
        for (let i = 0; i < 25 && idle.collections === 0; i++) await new Promise((r) => setTimeout(r, 20))
      }
      expect(idle.collections).toBeGreaterThan(0)
      // The process-wide counts /metrics exports moved with it.
      expect(idleGcCounts().compactions - before.compactions).toBe(idle.collections)
      expect(idleGcCounts().pauseSeconds).toBeGreaterThan(before.pauseSeconds)
    } finally {
      idle.stop()
    }
  })
})

/** New space's committed size, in bytes. */
function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0
}

/** Allocates short-lived objects of which a third survive a while: V8 grows new space for them. */
function growNewSpace(): void {
  let kept: { i: number; s: string }[] = []
  for (let i = 0; i < 3_000_000; i++) {
    const o = { i, s: `x${i}` }
    if (i % 3 === 0) kept.push(o)
    if (kept.length > 200_000) kept = []
  }
}

describe('startIdleGc and the young generation', () => {
  it('gives new space back: young collections first, then the compacting one', async () => {
    growNewSpace()
    const before = newSpaceBytes()
    expect(before).toBeGreaterThanOrEqual(8 * MiB) // the burst grew it (Node's default allows 32 MiB)
    // Any heap counts as grown: the collection is due as soon as the loop is quiet.
    const limits: IdleGcLimits = {
      ...idleGcLimits,
      sampleMs: 50,
      quietUtilizationMax: 0.2,
      growthBytesMin: 0,
      growthFractionMin: 0,
    }
    const idle = startIdleGc(createAgentLogger('error', 'idle-gc-test'), limits)
    try {
      const deadline = Date.now() + 10_000
      while (idle.collections === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      expect(idle.collections).toBeGreaterThan(0)
      expect(newSpaceBytes()).toBeLessThan(before / 2)
    } finally {
      idle.stop()
    }
  })

  it('puts the collection off when the loop gets busy during the young collections', async () => {
    const limits: IdleGcLimits = {
      ...idleGcLimits,
      sampleMs: 20,
      quietUtilizationMax: 1,
      growthBytesMin: 0,
      growthFractionMin: 0,
      youngCollections: 10,
      youngSpacingMs: 20,
      preparingUtilizationMax: 0.3,
    }
    const putOffBefore = idleGcCounts().putOff
    const idle = startIdleGc(createAgentLogger('error', 'idle-gc-test'), limits)
    // Half of every 10 ms spent working: the preparation sees about 50 % busy.
    const load = setInterval(() => {
      const until = performance.now() + 5
      while (performance.now() < until) {
        // busy
      }
    }, 10)
    try {
      await new Promise((r) => setTimeout(r, 1_500))
      expect(idle.collections).toBe(0)
      expect(idleGcCounts().putOff).toBeGreaterThan(putOffBefore)
      clearInterval(load)
      const deadline = Date.now() + 10_000
      while (idle.collections === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(idle.collections).toBeGreaterThan(0)
    } finally {
      clearInterval(load)
      idle.stop()
    }
  })
})
