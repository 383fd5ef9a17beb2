/**
 * bench/etcd-v2-percentiles: latency samples summarised the same way for every row.
 */
export interface Percentiles {
  count: number
  p50: number
  p99: number
  max: number
}

/** Sorts `samples` in place (the caller hands them over) and reads p50, p99 and max. */
export function percentiles(samples: number[]): Percentiles {
  samples.sort((a, b) => a - b)
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0
  return { count: samples.length, p50: at(0.5), p99: at(0.99), max: samples[samples.length - 1] ?? 0 }
}
