/**
 * summary.json of a run: the overall verdict, each checker's verdict, summary, culprit and details,
 * counts of history entries by f and type, faults by kind, and latency percentiles of ok operations
 * by f. Pure: the same history and results give the same summary.
 *
 * Conventions: times and latencies are milliseconds; percentiles are nearest-rank (the smallest
 * latency with at least p% of the ok operations at or below it). JSON writes +Infinity (a fault or
 * culprit window that never ended) as null.
 */

import type { CheckResult, Verdict } from '../checkers/checker.ts'
import { overallVerdict } from '../checkers/index.ts'
import { faultWindows, type Op, pairOps } from '../history.ts'

export interface LatencyPercentiles {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
}

export interface RunSummary {
  verdict: Verdict
  meta: Record<string, unknown>
  checkers: CheckResult[]
  ops: {
    /** Client invocations. */
    invocations: number
    /** History entries by f, then by type; `open` counts invocations that never completed. */
    byF: Record<string, Record<string, number>>
  }
  faults: { windows: number; byKind: Record<string, number> }
  /** Of ok operations, from invocation to completion, by f. */
  latencyMs: Record<string, LatencyPercentiles>
}

export function summarize(
  history: readonly Op[],
  results: readonly CheckResult[],
  meta: Record<string, unknown>,
): RunSummary {
  const byF: Record<string, Record<string, number>> = {}
  const latencies = new Map<string, number[]>()
  let invocations = 0
  for (const { invoke, complete } of pairOps(history)) {
    invocations++
    const counts = (byF[invoke.f] ??= {})
    counts['invoke'] = (counts['invoke'] ?? 0) + 1
    const type = complete?.type ?? 'open'
    counts[type] = (counts[type] ?? 0) + 1
    if (complete?.type !== 'ok') continue
    const list = latencies.get(invoke.f) ?? []
    list.push(complete.time - invoke.time)
    latencies.set(invoke.f, list)
  }
  const latencyMs: Record<string, LatencyPercentiles> = {}
  for (const [f, list] of [...latencies].sort(([a], [b]) => a.localeCompare(b)))
    latencyMs[f] = percentiles(list)
  const windows = faultWindows(history)
  const byKind: Record<string, number> = {}
  for (const { fault } of windows) byKind[fault.kind] = (byKind[fault.kind] ?? 0) + 1
  return {
    verdict: overallVerdict(results),
    meta,
    checkers: [...results],
    ops: { invocations, byF },
    faults: { windows: windows.length, byKind },
    latencyMs,
  }
}

export function percentiles(values: readonly number[]): LatencyPercentiles {
  const sorted = [...values].sort((a, b) => a - b)
  const rank = (p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
  return { count: sorted.length, p50: rank(50), p90: rank(90), p99: rank(99), max: sorted.at(-1) ?? 0 }
}
