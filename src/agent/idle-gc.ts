/**
 * Memory back at rest: one compacting garbage collection when the agent has gone quiet after a
 * burst that left the heap much larger than its live data.
 *
 * Why: V8 sizes the next full collection's threshold from the live data the last one found (up to
 * about four times it), and only collects when allocation reaches that threshold. After a burst of
 * writes an agent that then goes quiet keeps the garbage of the burst, and the pages that hold it,
 * resident indefinitely: a member holding 100,000 keys (about 70 MB live) sat at 270-320 MiB. V8's
 * own memory reducer, which would collect such a heap once the process is idle, never ran in an
 * agent (measured: 20 s quiet, no change): the heartbeat timers keep it from counting as idle. A
 * plain full collection is not enough either: it frees the garbage but leaves partly filled pages
 * (old space 116 MB committed for 70 MB used); only a compacting one returns them. Measured with
 * one member after 100,000 writes: 270-320 MiB resident before, 209 MiB after.
 *
 * Invariants:
 *   - A collection runs only after `quietSamplesMin` samples in a row whose event-loop utilization
 *     was at most `quietUtilizationMax`: never during load, where V8's own incremental, concurrent
 *     collections are cheaper than one that stops the loop.
 *   - A collection runs only when the heap in use has grown by at least `growthBytesMin` and by
 *     `growthFractionMin` of the smallest heap in use seen since the last collection (an estimate
 *     of the live data), so an idle agent does not collect again and again: after a collection the
 *     baseline is what it left.
 *   - The compaction flag is set only for the one collection this module asks for, and cleared even
 *     if the collection throws; V8's own collections keep their heuristics.
 *   - The sampler's timer is unref'd: it never keeps a process alive.
 *
 * The pause: one stop-the-world collection, about 70 ms for 70 MB live on the development VM,
 * taken only when the loop has been at most 2 % busy for 0.5 s. `cairn agent --no-idle-gc` turns
 * it off.
 */
import { performance } from 'node:perf_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { AgentLogger } from './logger.ts'

const MiB = 1024 * 1024

export const idleGcLimits = {
  /** Time between two samples of the event loop's utilization and the heap in use. */
  sampleMs: 250,
  /** A sample whose event loop was busy at most this fraction of the time counts as quiet. */
  quietUtilizationMax: 0.02,
  /** Quiet samples in a row before a collection: a burst has ended, not paused. */
  quietSamplesMin: 2,
  /** The heap in use must have grown by at least this many bytes over the baseline... */
  growthBytesMin: 32 * MiB,
  /** ...and by at least this fraction of the baseline. */
  growthFractionMin: 0.5,
}

export type IdleGcLimits = typeof idleGcLimits

/** The decision alone: fed one sample at a time, says when to collect. Pure, for tests. */
export class IdleGcPolicy {
  readonly #limits: IdleGcLimits
  #baselineBytes: number
  #quietSamples = 0

  constructor(heapUsedBytes: number, limits: IdleGcLimits = idleGcLimits) {
    this.#limits = limits
    this.#baselineBytes = heapUsedBytes
  }

  get baselineBytes(): number {
    return this.#baselineBytes
  }

  /** One sample; true when a collection should run now. */
  sample(utilization: number, heapUsedBytes: number): boolean {
    this.#baselineBytes = Math.min(this.#baselineBytes, heapUsedBytes)
    this.#quietSamples = utilization <= this.#limits.quietUtilizationMax ? this.#quietSamples + 1 : 0
    if (this.#quietSamples < this.#limits.quietSamplesMin) return false
    const growth = heapUsedBytes - this.#baselineBytes
    return (
      growth >= this.#limits.growthBytesMin && growth >= this.#baselineBytes * this.#limits.growthFractionMin
    )
  }

  /** A collection ran and left heapUsedBytes in use: the new baseline. */
  collected(heapUsedBytes: number): void {
    this.#baselineBytes = heapUsedBytes
    this.#quietSamples = 0
  }
}

export interface IdleGcResult {
  beforeBytes: number
  afterBytes: number
  ms: number
}

/** One compacting full collection of this process's heap, now. */
export function collectCompacting(): IdleGcResult {
  const beforeBytes = process.memoryUsage().heapUsed
  const started = performance.now()
  v8.setFlagsFromString('--compact-on-every-full-gc')
  try {
    exposedGc()()
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc')
  }
  return { beforeBytes, afterBytes: process.memoryUsage().heapUsed, ms: performance.now() - started }
}

let gcFunction: (() => void) | undefined

/** V8's gc(), taken from a fresh context once --expose-gc is set (the main context stays as it was). */
function exposedGc(): () => void {
  if (gcFunction === undefined) {
    v8.setFlagsFromString('--expose-gc')
    gcFunction = vm.runInNewContext('gc') as () => void
  }
  return gcFunction
}

export interface IdleGc {
  /** Collections run so far. */
  readonly collections: number
  stop(): void
}

/** Samples every `limits.sampleMs` and collects when the policy says so; logs each collection. */
export function startIdleGc(log: AgentLogger, limits: IdleGcLimits = idleGcLimits): IdleGc {
  const policy = new IdleGcPolicy(process.memoryUsage().heapUsed, limits)
  let last = performance.eventLoopUtilization()
  let collections = 0
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization()
    const { utilization } = performance.eventLoopUtilization(now, last)
    last = now
    if (!policy.sample(utilization, process.memoryUsage().heapUsed)) return
    const result = collectCompacting()
    collections++
    policy.collected(result.afterBytes)
    log.debug(
      { heapUsedMiB: [toMiB(result.beforeBytes), toMiB(result.afterBytes)], ms: Math.round(result.ms) },
      'idle: compacted the heap',
    )
    last = performance.eventLoopUtilization() // the collection's own time is not load
  }, limits.sampleMs)
  timer.unref()
  return {
    get collections() {
      return collections
    },
    stop: () => clearInterval(timer),
  }
}

function toMiB(bytes: number): number {
  return Math.round(bytes / MiB)
}
