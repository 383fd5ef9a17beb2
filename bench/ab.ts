/**
 * bench/ab: two builds of Cairn side by side, to tell a change of a few percent from the noise.
 *
 *   npm run bench:ab -- --base HEAD~1                        this checkout against its parent
 *   npm run bench:ab -- --base main --concurrency 64 --ops write,quorum
 *
 * The base build is checked out with `git worktree add --detach` into a temporary directory (its
 * node_modules a link to this checkout's, its bundle built once before its members start), and the
 * two builds' 3-member clusters run at the same time on random loopback ports. After the 1,000-key
 * fill and --warmup seconds of each cell's load on each (V8's compiler works for 10-20 s of a fresh
 * member's load, docs/bench.md), the load alternates between them in --slice-seconds slices,
 * --slices per build and cell, the base first in odd slices and this checkout first in even ones,
 * so that a burst of machine noise or a drift falls on both. The idle cluster costs the measured
 * one a little (its heartbeats); both pay it alike. Both run with `--no-idle-gc`: a cluster left
 * idle for the other's 12 s warm-up would otherwise compact its heap right before its own slices,
 * and the first seconds after such a compaction run 10-15 % slower (docs/bench.md), a pause the
 * harness made, not the load (so a base older than the flag, 0b92a5a, cannot be compared).
 *
 * Printed per cell: each build's ops/s over its slices, its CPU per operation on the leader and on
 * each follower (user + system time from /proc/<pid>/stat across its slices, µs), and the ratio
 * this / base. On the 2-core development VM one 3 s cell of `npm run bench` moves by ±10-20 %
 * between runs; here the same build against itself read 1.008-1.024, and one change 1.085 in one
 * run and 1.022 in the next, so a difference under about 5 % needs several runs (docs/bench.md).
 * The worktree is removed at the end, also after an error or Ctrl-C.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadAverage, machineLine, parseBenchArgs, UsageError, usageText } from './bench-env.ts'
import { type BenchCluster, leaderIndex, startCairnCluster } from './etcd-v2-cluster.ts'
import { fillKeys, type KvOp, kvKeys, kvPool, measureKv } from './etcd-v2-kv.ts'

const repoDir = fileURLToPath(new URL('..', import.meta.url))
/** See the header: the harness's own pauses must not set off the agents' idle compaction. */
const noIdleGc = ['--no-idle-gc']
/** Clock ticks per second of /proc/<pid>/stat's times (Linux's USER_HZ). */
const ticksPerSecond = 100

const opNames: Record<string, KvOp> = { write: 'write', local: 'local read', quorum: 'quorum read' }

const cliOptions = {
  base: { type: 'string', default: 'HEAD' },
  ops: { type: 'string', default: 'write' },
  concurrency: { type: 'string', default: '16,64' },
  slices: { type: 'string', default: '16' },
  'slice-seconds': { type: 'string', default: '1' },
  warmup: { type: 'string', default: '12' },
  help: { type: 'boolean', default: false },
} as const

const optionHelp: Record<keyof typeof cliOptions, [string, string]> = {
  base: ['REV', 'the git revision to compare this checkout with'],
  ops: ['LIST', 'operations: write, local, quorum'],
  concurrency: ['LIST', 'concurrency levels, one cell each'],
  slices: ['N', 'measured slices per build and cell'],
  'slice-seconds': ['N', 'seconds of one slice'],
  warmup: ['N', 'seconds of unmeasured load per build before each cell'],
  help: ['', 'this text'],
}

const usage = usageText('npm run bench:ab', cliOptions, optionHelp)

interface Options {
  base: string
  ops: KvOp[]
  levels: number[]
  slices: number
  sliceSeconds: number
  warmup: number
}

function parseOptions(): Options | undefined {
  const values = parseBenchArgs(cliOptions, usage)
  if (values.help) {
    console.log(usage)
    return undefined
  }
  const list = (s: string) => s.split(',').filter((x) => x !== '')
  const ops = list(values.ops)
  if (ops.length === 0 || !ops.every((o) => o in opNames))
    throw new UsageError(`--ops is a list of ${Object.keys(opNames).join(', ')}`)
  const options: Options = {
    base: values.base,
    ops: ops.map((o) => opNames[o] as KvOp),
    levels: list(values.concurrency).map(Number),
    slices: Number(values.slices),
    sliceSeconds: Number(values['slice-seconds']),
    warmup: Number(values.warmup),
  }
  for (const n of [...options.levels, options.sliceSeconds])
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`not a positive number: ${n}`)
  if (options.levels.length === 0) throw new UsageError('--concurrency names at least one level')
  if (!Number.isInteger(options.slices) || options.slices < 1)
    throw new UsageError('--slices is a whole number, at least 1')
  if (!Number.isFinite(options.warmup) || options.warmup < 0)
    throw new UsageError(`not zero or a positive number: ${options.warmup}`)
  return options
}

function git(args: string[]): string {
  const run = spawnSync('git', args, { cwd: repoDir, encoding: 'utf8' })
  if (run.status !== 0) throw new UsageError(`git ${args.join(' ')}: ${run.stderr.trim()}`)
  return run.stdout.trim()
}

/** A checkout of `rev` that runs: the worktree, its node_modules linked, its bundle built. */
function checkOut(rev: string): { dir: string; bin: string; commit: string } {
  const commit = git(['rev-parse', '--verify', `${rev}^{commit}`])
  const dir = mkdtempSync(join(tmpdir(), 'cairn-ab-'))
  try {
    git(['worktree', 'add', '--detach', dir, commit])
    symlinkSync(join(repoDir, 'node_modules'), join(dir, 'node_modules'))
    const bin = join(dir, 'bin', 'cairn')
    // Three members building the bundle at once would race; one run builds it first.
    const built = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' })
    if (built.status !== 0) throw new Error(`the base build does not run: ${built.stderr.slice(-2000)}`)
    return { dir, bin, commit }
  } catch (error) {
    removeCheckout(dir)
    throw error
  }
}

function removeCheckout(dir: string): void {
  spawnSync('git', ['worktree', 'remove', '--force', dir], { cwd: repoDir })
  rmSync(dir, { recursive: true, force: true })
}

/** User + system CPU of a process so far, µs. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSecond
}

interface Side {
  url: string
  /** Leader first, then the followers. */
  pids: number[]
}

interface Tally {
  answered: number
  seconds: number
  cpu: number[]
}

async function sideOf(cluster: BenchCluster): Promise<Side> {
  const leader = await leaderIndex(cluster)
  const url = cluster.clientUrls[leader] as string
  await fillKeys(url, kvKeys, 32)
  const order = [leader, ...[0, 1, 2].filter((i) => i !== leader)]
  return { url, pids: order.map((i) => cluster.pid(i)) }
}

async function cell(sides: Side[], op: KvOp, c: number, o: Options): Promise<Tally[]> {
  const pools = sides.map((s) => kvPool(s.url, c))
  try {
    for (const pool of pools) if (o.warmup > 0) await measureKv(pool, op, c, o.warmup, [])
    const tallies = sides.map(() => ({ answered: 0, seconds: 0, cpu: [0, 0, 0] }))
    for (let slice = 0; slice < o.slices; slice++) {
      const order = slice % 2 === 0 ? [0, 1] : [1, 0]
      for (const k of order) {
        const side = sides[k] as Side
        const tally = tallies[k] as Tally
        const latencies: number[] = []
        const before = side.pids.map(cpuMicros)
        tally.seconds += await measureKv(
          pools[k] as ReturnType<typeof kvPool>,
          op,
          c,
          o.sliceSeconds,
          latencies,
        )
        side.pids.forEach((pid, m) => {
          tally.cpu[m] = (tally.cpu[m] as number) + cpuMicros(pid) - (before[m] as number)
        })
        tally.answered += latencies.length
      }
    }
    return tallies
  } finally {
    await Promise.all(pools.map((p) => p.close()))
  }
}

function show(label: string, tally: Tally): string {
  const rate = tally.answered / tally.seconds
  const per = tally.cpu.map((us) => (us / tally.answered).toFixed(0))
  return `${label.padEnd(26)}${Math.round(rate).toString().padStart(8)} ops/s   CPU µs/op leader ${per[0]}, followers ${per[1]} / ${per[2]}`
}

async function main(): Promise<void> {
  const o = parseOptions()
  if (o === undefined) return
  const base = checkOut(o.base)
  const head = git(['rev-parse', '--short', 'HEAD'])
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== ''
  const clusters: BenchCluster[] = []
  const stop = async () => {
    await Promise.allSettled(clusters.splice(0).map((c) => c.stop()))
    removeCheckout(base.dir)
  }
  process.once('SIGINT', () => {
    void stop().finally(() => process.exit(130))
  })
  try {
    console.log(`bench:ab: ${machineLine()}`)
    console.log(`load average at start: ${loadAverage()}`)
    const thisName = `this (${head}${dirty ? ' + changes' : ''})`
    const baseName = `base (${base.commit.slice(0, 7)})`
    clusters.push(await startCairnCluster(base.bin, noIdleGc), await startCairnCluster(undefined, noIdleGc))
    const sides = [await sideOf(clusters[0] as BenchCluster), await sideOf(clusters[1] as BenchCluster)]
    console.log(
      `${o.slices} slices of ${o.sliceSeconds} s per build and cell, alternating, after ${o.warmup} s of the cell's load on each`,
    )
    for (const op of o.ops) {
      for (const c of o.levels) {
        const [b, t] = (await cell(sides, op, c, o)) as [Tally, Tally]
        console.log(`\n${op} c=${c}`)
        console.log(show(baseName, b))
        console.log(show(thisName, t))
        const ratio = t.answered / t.seconds / (b.answered / b.seconds)
        console.log(`${'this / base'.padEnd(26)}${ratio.toFixed(3).padStart(8)}`)
      }
    }
    console.log(`\nload average at the end: ${loadAverage()}`)
  } finally {
    await stop()
  }
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(error.message)
    process.exit(2)
  }
  console.error(error)
  process.exit(1)
})
