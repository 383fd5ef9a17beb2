/**
 * What every bench prints about where it ran, and the median it reports: one copy for all of
 * them (etcd-v2, dns-qps, scheduler).
 */
import { cpus, loadavg, release, totalmem } from 'node:os'

/** `2 x <cpu>, 23.5 GiB, Linux <release>, Node <version>` plus the bench's own parts (tool versions). */
export function machineLine(extra: string[] = []): string {
  const cores = cpus()
  return [
    `${cores.length} x ${cores[0]?.model ?? 'unknown cpu'}`,
    `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Linux ${release()}`,
    `Node ${process.version}`,
    ...extra,
  ].join(', ')
}

/** The 1, 5 and 15 minute load averages, for the start and end lines of a run. */
export function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')
}

/** The median of the defined values (the mean of the middle two for an even count). */
export function median(values: readonly (number | undefined)[]): number | undefined {
  const xs = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b)
  if (xs.length === 0) return undefined
  const mid = xs.length >> 1
  return xs.length % 2 === 1 ? xs[mid] : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2
}
