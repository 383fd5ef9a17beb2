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
 * The young generation. Under load V8 grows new space (its two semi-spaces) to its maximum, 32 MiB
 * with Node's defaults, and gives it back only in a full collection taken while the allocation
 * throughput it measures is low (under 1 KB/ms). It measures that throughput from samples it takes
 * at each collection, its last ten or so; a quiet agent collects nothing, so the burst's samples
 * stay the newest and a full collection right after the quiet window still sees a busy mutator
 * (measured: new space stayed at 32 MiB committed after every such collection). So the compacting
 * collection comes after `youngCollections` young-generation collections `youngSpacingMs` apart:
 * each takes 1-2 ms with new space nearly empty, and their samples show the quiet. Measured in a
 * script (3 million objects allocated, a million kept): 10 young collections 50 ms apart, or 15
 * 20 ms apart, left new space at 32 MiB; 16 or 20, 25 ms apart, took it to 1-2 MiB in every run,
 * and the process's resident memory down by about 30 MiB.
 *
 * Invariants:
 *   - A collection runs only after `quietSamplesMin` samples in a row whose event-loop utilization
 *     was at most `quietUtilizationMax`, and only if the loop stayed quiet during the young
 *     collections before it (at most `preparingUtilizationMax`, their own time not counted): never
 *     during load, where V8's own incremental, concurrent collections are cheaper than one that
 *     stops the loop. Load that comes back during the young collections puts the collection off
 *     until the next quiet samples.
 *   - A collection runs only when the heap in use has grown by at least `growthBytesMin` and by
 *     `growthFractionMin` of the smallest heap in use seen since the last collection (an estimate
 *     of the live data), so an idle agent does not collect again and again: after a collection the
 *     baseline is what it left.
 *   - At most one run of young collections at a time; the sampler decides nothing while it runs.
 *   - The compaction flag is set only for the one collection this module asks for, and cleared even
 *     if the collection throws; V8's own collections keep their heuristics.
 *   - The timers are unref'd: they never keep a process alive; stop() clears both.
 *
 * The pause: one stop-the-world collection, about 70 ms for 70 MB live on the development VM, plus
 * the young collections' 1-2 ms each, taken only when the loop has been at most 2 % busy for 0.5 s.
 * `cairn agent --no-idle-gc` turns it off.
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
  /** Young-generation collections before the compacting one, so that V8 gives new space back... */
  youngCollections: 20,
  /** ...this far apart (see the header; 0 collections: none). */
  youngSpacingMs: 25,
  /**
   * The loop may be at most this busy during the young collections, their own time not counted:
   * their wake-ups alone keep it 4-6 % busy (measured in members at rest), so the bar is higher
   * than quietUtilizationMax, and still well under any load.
   */
  preparingUtilizationMax: 0.1,
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

  /** Quiet samples in a row so far. */
  get quietSamples(): number {
    return this.#quietSamples
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

  /** The loop got busy while the collection was being prepared: count quiet samples again. */
  interrupted(): void {
    this.#quietSamples = 0
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

/** One young-generation collection (a scavenge), now; returns how long it took in ms. */
export function collectYoung(): number {
  const started = performance.now()
  exposedGc()({ type: 'minor' })
  return performance.now() - started
}

type GcFunction = (options?: { type: 'minor' | 'major' }) => void
let gcFunction: GcFunction | undefined

/** V8's gc(), taken from a fresh context once --expose-gc is set (the main context stays as it was). */
function exposedGc(): GcFunction {
  if (gcFunction === undefined) {
    v8.setFlagsFromString('--expose-gc')
    gcFunction = vm.runInNewContext('gc') as GcFunction
  }
  return gcFunction
}

/**
 * What the idle GC of this process has done since it started (V8's heap is the process's, so the
 * counts are too; /metrics exports them, docs/metrics.md).
 */
export interface IdleGcCounts {
  /** Compacting collections run. */
  compactions: number
  /** Compactions put off because load came back during the young collections before them. */
  putOff: number
  /** Seconds the event loop was stopped by the collections this module asked for, young ones included. */
  pauseSeconds: number
}

const counts: IdleGcCounts = { compactions: 0, putOff: 0, pauseSeconds: 0 }

export function idleGcCounts(): Readonly<IdleGcCounts> {
  return counts
}

export interface IdleGc {
  /** Collections run so far. */
  readonly collections: number
  stop(): void
}

/**
 * Samples every `limits.sampleMs`; when the policy says so, runs the young collections and then
 * the compacting one (see the header); logs each collection.
 */
export function startIdleGc(log: AgentLogger, limits: IdleGcLimits = idleGcLimits): IdleGc {
  const policy = new IdleGcPolicy(process.memoryUsage().heapUsed, limits)
  let last = performance.eventLoopUtilization()
  let collections = 0
  let preparing: NodeJS.Timeout | undefined
  let toldNotGrown = false

  const collect = () => {
    const result = collectCompacting()
    collections++
    counts.compactions++
    counts.pauseSeconds += result.ms / 1000
    toldNotGrown = false
    policy.collected(result.afterBytes)
    log.debug(
      { heapUsedMiB: [toMiB(result.beforeBytes), toMiB(result.afterBytes)], ms: Math.round(result.ms) },
      'idle: compacted the heap',
    )
    last = performance.eventLoopUtilization() // the collection's own time is not load
  }

  const prepare = () => {
    const start = performance.eventLoopUtilization()
    let done = 0
    let ownMs = 0
    const young = setInterval(() => {
      ownMs += collectYoung()
      if (++done < limits.youngCollections) return
      clearInterval(young)
      preparing = undefined
      counts.pauseSeconds += ownMs / 1000
      const elu = performance.eventLoopUtilization(performance.eventLoopUtilization(), start)
      last = performance.eventLoopUtilization()
      const busy = (elu.active - ownMs) / Math.max(elu.active + elu.idle, 1)
      if (busy <= limits.preparingUtilizationMax) return collect()
      policy.interrupted()
      counts.putOff++
      log.debug({ utilization: Number(busy.toFixed(3)) }, 'idle: load came back; compaction put off')
    }, limits.youngSpacingMs)
    young.unref()
    preparing = young
  }

  const sampler = setInterval(() => {
    const now = performance.eventLoopUtilization()
    const { utilization } = performance.eventLoopUtilization(now, last)
    last = now
    if (preparing !== undefined) return
    const heapUsed = process.memoryUsage().heapUsed
    if (!policy.sample(utilization, heapUsed)) {
      // Told once per baseline: an idle agent's quiet stretches would repeat it every second.
      if (policy.quietSamples === limits.quietSamplesMin && !toldNotGrown) {
        toldNotGrown = true
        log.debug(
          { heapUsedMiB: toMiB(heapUsed), baselineMiB: toMiB(policy.baselineBytes) },
          'idle: quiet; the heap has not grown enough to compact',
        )
      }
      return
    }
    if (limits.youngCollections > 0) prepare()
    else collect()
  }, limits.sampleMs)
  sampler.unref()
  return {
    get collections() {
      return collections
    },
    stop: () => {
      clearInterval(sampler)
      if (preparing !== undefined) clearInterval(preparing)
      preparing = undefined
    },
  }
}

function toMiB(bytes: number): number {
  return Math.round(bytes / MiB)
}
