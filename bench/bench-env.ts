/**
 * What every bench prints about where it ran, and the median it reports: one copy for all of
 * them (etcd-v2, dns-qps, scheduler, ab); and the option handling of those with options (etcd-v2,
 * ab): --help built from the option table, bad options refused with it.
 */
import { cpus, loadavg, release, totalmem } from 'node:os'
import { type ParseArgsConfig, parseArgs } from 'node:util'

/** A bad option or environment: printed as one line, exit code 2. */
export class UsageError extends Error {}

type BenchOptions = Record<
  string,
  { type: 'string'; default: string } | { type: 'boolean'; default: boolean }
>

/** What --help prints: every option with its argument, what it changes and its default. */
export function usageText<O extends BenchOptions>(
  command: string,
  options: O,
  help: Record<keyof O, [string, string]>,
): string {
  return [
    `usage: ${command} -- [options]`,
    ...Object.entries(help).map(([name, [arg, what]]) => {
      const option = options[name] as O[string]
      const shown = option.type === 'string' ? ` (default ${option.default})` : ''
      return `  ${`--${name} ${arg}`.padEnd(23)}${what}${shown}`
    }),
  ].join('\n')
}

/**
 * parseArgs over process.argv: every option has a default, so every value is there. parseArgs' own
 * errors (an unknown option, a missing value) are the user's to fix: UsageErrors with the usage.
 */
export function parseBenchArgs<O extends BenchOptions>(
  options: O,
  usage: string,
): { [K in keyof O]: O[K] extends { type: 'boolean' } ? boolean : string } {
  try {
    const config: ParseArgsConfig = { options }
    return parseArgs(config).values as unknown as {
      [K in keyof O]: O[K] extends { type: 'boolean' } ? boolean : string
    }
  } catch (error) {
    if (error instanceof TypeError && String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS'))
      throw new UsageError(`${error.message}\n${usage}`)
    throw error
  }
}

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
