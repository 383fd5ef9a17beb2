/**
 * bench/etcd-v2: Cairn against the real etcd, side by side, over the etcd v2 keys API.
 *
 * Each part starts its own fresh 3-member Cairn cluster (`cairn agent` processes) and, when
 * Debian's etcd-server is installed, a fresh 3-member etcd with --enable-v2, both on random
 * loopback ports with heartbeat 100 ms and election timeout 1000 ms, runs the same load against
 * both and stops both (also on errors and on Ctrl-C). The parts, in the order they run:
 *   kv        writes, local reads, quorum reads at each concurrency: ops/s, p50, p99 (etcd-v2-kv.ts)
 *   watch     N long-poll watchers on one key, one PUT: p50/p99/max until each has the event
 *             (etcd-v2-watch.ts)
 *   memory    VmRSS of the leader and a follower, empty and with 100,000 keys (etcd-v2-memory.ts)
 *   failover  kill -9 of the leader under 200 writes/s: time until writes succeed again
 *             (etcd-v2-failover.ts)
 * Everything runs on this one machine: the load generator and six servers share its cores. Read
 * the ratios (Cairn/etcd), not the absolute numbers. docs/bench.md explains every row.
 *
 *   npm run bench                                      every part with the defaults
 *   npm run bench -- --rows kv --seconds 1 --concurrency 1,64
 *   npm run bench -- --rows kv --ops write --systems cairn
 *   npm run bench -- --rows watch --watchers 500 --watch-on leader
 *   npm run bench -- --rows memory --keys 20000
 *   npm run bench -- --systems cairn                   skip etcd even when it is installed
 *   npm run bench -- --start-warmup 0 --warmup 0 --watch-warmup 0   freshly started servers
 *   npm run bench -- --rows kv --slices 1              each kv cell in one piece per system
 *
 * Warm-up: right after the fill, each system gets --start-warmup seconds of every kv cell's load in
 * turn (printed as the "(start-up)" line; its ratio is not one of the goals). Every kv cell is then
 * preceded by --warmup seconds of the same load on the same system, and the measured watch round
 * by --watch-warmup rounds on the same servers; their figures are printed as "(warm-up)" lines and
 * never enter a ratio. A freshly started Node server spends its first 10-20 s of load partly
 * unoptimised and compiling, an etcd binary does not; a member in service has long been warm
 * (docs/bench.md).
 *
 * Slices: each kv cell's --seconds are cut into --slices slices (default 6, 0.5 s each) that
 * alternate between the systems, so a burst of noise on this shared machine falls on both.
 */
import { spawnSync } from 'node:child_process'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { etcdAvailable } from '../test/helpers/etcd.ts'
import { loadAverage, machineLine, median, parseBenchArgs, UsageError, usageText } from './bench-env.ts'
import {
  type BenchCluster,
  leaderIndex,
  type SystemName,
  startCairnCluster,
  startEtcdCluster,
} from './etcd-v2-cluster.ts'
import { type FailoverRow, runFailover } from './etcd-v2-failover.ts'
import {
  fillKeys,
  type KvOp,
  type KvRow,
  kvKeys,
  kvOps,
  kvPool,
  kvRow,
  measureKv,
  runKv,
} from './etcd-v2-kv.ts'
import { type MemoryRow, runMemory } from './etcd-v2-memory.ts'
import { runWatch, type WatchPlacement, type WatchRow } from './etcd-v2-watch.ts'
import { startWatchFloor } from './etcd-v2-watch-floor.ts'

type Part = 'kv' | 'watch' | 'memory' | 'failover' | 'dns' | 'blocking' | 'placement' | 'scheduler'
const partsInOrder: Part[] = [
  'kv',
  'watch',
  'memory',
  'failover',
  'dns',
  'blocking',
  'placement',
  'scheduler',
]
/** Rows that are their own scripts (issue 5), run as children with this run's --seconds. */
const scriptParts = {
  dns: 'dns-qps.ts', // DNS queries per second against BIND
  blocking: 'consul-blocking.ts', // blocking-query fan-out, 10,000 clients
  placement: 'scheduler-placement.ts', // issue 6: 50,000 units placed on 1,000 simulated machines, ~2 s
  scheduler: 'scheduler.ts', // issue 6: start, scale, rolling update, machine failure on 4 agents
} as const

interface Options {
  seconds: number
  /** Slices each kv cell's seconds are cut into, alternating between the systems. */
  slices: number
  levels: number[]
  parts: Part[]
  watchers: number
  placement: WatchPlacement
  watchThreads: number
  keys: number
  systems: SystemName[]
  ops: KvOp[]
  failovers: number
  /** Seconds of the same load, not counted, before each kv cell; 0 for none. */
  warmup: number
  /** Seconds of every kv cell's load in turn, not counted, before the first cell; 0 for none. */
  startWarmup: number
  /** Unmeasured watch rounds per system (and for the client floor) before the measured one. */
  watchWarmup: number
}

/** --ops names of the kv row's operations. */
const opNames: Record<string, KvOp> = { write: 'write', local: 'local read', quorum: 'quorum read' }

const labelWidth = 30
const cellWidth = 30

const cliOptions = {
  rows: { type: 'string', default: partsInOrder.join(',') },
  systems: { type: 'string', default: 'cairn,etcd' },
  seconds: { type: 'string', default: '3' },
  slices: { type: 'string', default: '6' },
  concurrency: { type: 'string', default: '1,16,64,256' },
  ops: { type: 'string', default: Object.keys(opNames).join(',') },
  warmup: { type: 'string', default: '2' },
  'start-warmup': { type: 'string', default: '24' },
  watchers: { type: 'string', default: '5000' },
  'watch-on': { type: 'string', default: 'all' },
  'watch-threads': { type: 'string', default: String(Math.max(1, Math.min(4, cpus().length))) },
  'watch-warmup': { type: 'string', default: '2' },
  keys: { type: 'string', default: '100000' },
  failovers: { type: 'string', default: '3' },
  help: { type: 'boolean', default: false },
} as const

/** Each option's argument and what it changes, for --help (docs/bench.md has more). */
const optionHelp: Record<keyof typeof cliOptions, [string, string]> = {
  rows: ['LIST', "parts to run, always in the default's order"],
  systems: ['LIST', 'cairn, etcd or both (etcd only when etcd-server is installed)'],
  seconds: ['N', 'duration of each kv cell'],
  slices: ['N', 'each kv cell cut into N slices alternating between the systems'],
  concurrency: ['LIST', 'kv concurrency levels'],
  ops: ['LIST', 'kv operations'],
  warmup: ['N', 'seconds of unmeasured load before each kv cell'],
  'start-warmup': ['N', 'seconds of every kv cell in turn, unmeasured, before the first'],
  watchers: ['N', 'long-poll watchers in the watch row'],
  'watch-on': ['all|leader', 'spread the watchers over the members, or all on the leader'],
  'watch-threads': ['N', 'client threads holding the watchers (CPU count, at most 4)'],
  'watch-warmup': ['N', 'unmeasured watch rounds before the measured one'],
  keys: ['N', 'keys written before the memory row is read'],
  failovers: ['N', 'failover rounds, each on fresh clusters'],
  help: ['', 'this text'],
}

const usage = usageText('npm run bench', cliOptions, optionHelp)

function parseOptions(): Options | undefined {
  const values = parseBenchArgs(cliOptions, usage)
  if (values.help) {
    console.log(usage)
    return undefined
  }
  const list = (s: string) => s.split(',').filter((x) => x !== '')
  const parts = list(values.rows)
  const unknown = parts.filter((p) => !partsInOrder.includes(p as Part))
  if (unknown.length > 0)
    throw new UsageError(`unknown --rows ${unknown.join(',')}: use ${partsInOrder.join(',')}`)
  const placement = values['watch-on']
  if (placement !== 'all' && placement !== 'leader') throw new UsageError('--watch-on is all or leader')
  const systems = list(values.systems)
  const isSystem = (s: string): s is SystemName => s === 'cairn' || s === 'etcd'
  if (systems.length === 0 || !systems.every(isSystem))
    throw new UsageError('--systems is cairn, etcd or both')
  const ops = list(values.ops)
  if (ops.length === 0 || !ops.every((o) => o in opNames))
    throw new UsageError(`--ops is a list of ${Object.keys(opNames).join(', ')}`)
  const options: Options = {
    seconds: Number(values.seconds),
    slices: Number(values.slices),
    levels: list(values.concurrency).map(Number),
    parts: partsInOrder.filter((p) => parts.includes(p)),
    watchers: Number(values.watchers),
    placement,
    watchThreads: Number(values['watch-threads']),
    keys: Number(values.keys),
    systems: systems.filter(isSystem),
    ops: kvOps.filter((op) => ops.some((o) => opNames[o] === op)),
    failovers: Number(values.failovers),
    warmup: Number(values.warmup),
    startWarmup: Number(values['start-warmup']),
    watchWarmup: Number(values['watch-warmup']),
  }
  const counts = [
    options.seconds,
    options.watchers,
    options.watchThreads,
    options.keys,
    options.failovers,
    ...options.levels,
  ]
  for (const n of counts)
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`not a positive number: ${n}`)
  for (const n of [options.warmup, options.startWarmup, options.watchWarmup])
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`not zero or a positive number: ${n}`)
  if (!Number.isInteger(options.watchWarmup))
    throw new UsageError('--watch-warmup is a whole number of rounds')
  if (!Number.isInteger(options.slices) || options.slices < 1)
    throw new UsageError('--slices is a whole number of slices, at least 1')
  return options
}

/** Clusters started and not yet stopped, for the signal handler. */
const running = new Set<Pick<BenchCluster, 'stop'>>()

async function withClusters(
  systems: SystemName[],
  body: (clusters: BenchCluster[]) => Promise<void>,
): Promise<void> {
  const clusters: BenchCluster[] = []
  try {
    for (const system of systems) {
      const cluster = system === 'cairn' ? await startCairnCluster() : await startEtcdCluster()
      running.add(cluster)
      clusters.push(cluster)
    }
    await body(clusters)
  } finally {
    await Promise.allSettled(clusters.map((c) => c.stop()))
    for (const cluster of clusters) running.delete(cluster)
  }
}

function line(label: string, cells: (string | undefined)[], ratio: number | undefined): void {
  const shown = cells.map((c) => (c ?? '-').padStart(cellWidth)).join(' |')
  const r = ratio === undefined || !Number.isFinite(ratio) ? '' : ratio.toFixed(2)
  console.log(`${label.padEnd(labelWidth)}${shown} | ${r}`)
}

function header(title: string, cell: string, ratio: string, systems: SystemName[]): void {
  console.log('')
  console.log(title)
  const titles = systems.map((s) => `${s} ${cell}`.padStart(cellWidth)).join(' |')
  console.log(`${''.padEnd(labelWidth)}${titles} | ${ratio}`)
}

const ms = (x: number) => x.toFixed(2).padStart(7)
const ratioOf = (values: (number | undefined)[]) =>
  values.length === 2 && values[0] !== undefined && values[1] !== undefined
    ? values[0] / values[1]
    : undefined

async function kvPart(clusters: BenchCluster[], o: Options): Promise<void> {
  const leaders = await Promise.all(clusters.map(async (c) => c.clientUrls[await leaderIndex(c)] as string))
  for (const url of leaders) await fillKeys(url, kvKeys, 32)
  const warm = o.warmup > 0 ? `; each cell after ${o.warmup} s of the same load, not counted` : ''
  header(
    `kv: closed loop on the leader, ${o.seconds} s per cell in ${o.slices} slices alternating between the systems${warm}`,
    'ops/s  p50 ms  p99 ms',
    'ops ratio',
    o.systems,
  )
  const cellText = (r: KvRow) =>
    `${Math.round(r.opsPerSecond).toString().padStart(8)} ${ms(r.p50)} ${ms(r.p99)}`
  if (o.startWarmup > 0) {
    const started: KvRow[] = []
    for (const url of leaders) started.push(await startWarmup(url, o))
    // Shown with its ratio for what it is, how a freshly started system does; not one of the goals.
    line(
      `(start-up) every cell, ${o.startWarmup} s`,
      started.map(cellText),
      ratioOf(started.map((r) => r.opsPerSecond)),
    )
  }
  for (const op of o.ops) {
    for (const c of o.levels) {
      const warm: KvRow[] = []
      const rows: KvRow[] = []
      // One system after the other, cell by cell, so that machine noise falls on both. Each cell
      // is preceded by the same load, not counted: a Node server runs its first seconds of a load
      // partly unoptimised (V8 compiles its hot paths as they get hot, and each level has its
      // own: one entry per Ready at one client, large batches at 256), which a member in service
      // has long been through (docs/bench.md).
      for (const url of leaders) if (o.warmup > 0) warm.push(await runKv(url, op, c, o.warmup))
      rows.push(...(await slicedCell(leaders, op, c, o)))
      if (warm.length > 0) line(`(warm-up) ${op} c=${c}`, warm.map(cellText), undefined)
      line(`${op} c=${c}`, rows.map(cellText), ratioOf(rows.map((r) => r.opsPerSecond)))
    }
  }
}

/**
 * The start-up warm-up: right after the fill, o.startWarmup seconds of every kv cell's load on
 * one system, each operation at each concurrency level for an equal share of the time, in the
 * order the cells run. Returns what was answered over the whole of it (a mix of operations, the
 * same for both systems). A freshly started member compiles its hot paths for its first 10-20 s
 * of load, and each cell's own --warmup is too short for that (docs/bench.md).
 */
async function startWarmup(url: string, o: Options): Promise<KvRow> {
  const share = o.startWarmup / (o.ops.length * o.levels.length)
  const latencies: number[] = []
  let seconds = 0
  for (const op of o.ops) {
    for (const c of o.levels) {
      const pool = kvPool(url, c)
      try {
        seconds += await measureKv(pool, op, c, share, latencies)
      } finally {
        await pool.close()
      }
    }
  }
  return kvRow(latencies, seconds)
}

/**
 * One kv cell: o.seconds of load on each system, in o.slices slices that alternate between the
 * systems (Cairn's first, then etcd's first, ...), each system on its own pool kept open across its
 * slices. A burst of machine noise then falls on both systems alike, and a drift over the cell does
 * not favour the one measured first. Latencies of a system's slices are pooled; its ops/s is its
 * answered requests over the time its slices took.
 */
async function slicedCell(leaders: string[], op: KvOp, c: number, o: Options): Promise<KvRow[]> {
  const systems = leaders.map((url) => ({ pool: kvPool(url, c), latencies: [] as number[], seconds: 0 }))
  try {
    for (let slice = 0; slice < o.slices; slice++) {
      const order = slice % 2 === 0 ? systems : [...systems].reverse()
      for (const s of order) s.seconds += await measureKv(s.pool, op, c, o.seconds / o.slices, s.latencies)
    }
  } finally {
    await Promise.all(systems.map((s) => s.pool.close()))
  }
  return systems.map((s) => kvRow(s.latencies, s.seconds))
}

/**
 * o.watchWarmup unmeasured rounds, then the measured one, on the same servers (the client threads
 * are new in every round). Returns every round, the measured one last.
 */
async function watchRounds(
  cluster: Pick<BenchCluster, 'clientUrls'>,
  leader: number,
  o: Options,
): Promise<WatchRow[]> {
  const rounds: WatchRow[] = []
  for (let i = 0; i <= o.watchWarmup; i++)
    rounds.push(await runWatch(cluster, leader, o.watchers, o.placement, o.watchThreads))
  return rounds
}

async function watchPart(clusters: BenchCluster[], o: Options): Promise<void> {
  const rounds: WatchRow[][] = []
  for (const cluster of clusters) rounds.push(await watchRounds(cluster, await leaderIndex(cluster), o))
  const rows = rounds.map((r) => r[r.length - 1] as WatchRow)
  const where = o.placement === 'all' ? 'spread over the 3 members' : 'all on the leader'
  const warm = o.watchWarmup > 0 ? `; ${o.watchWarmup} unmeasured rounds first` : ''
  const title = `watch: ${o.watchers} long polls on one key (${where}), one PUT; ${o.watchThreads} client threads${warm}`
  header(title, 'p50    p99    max ms', 'p99 ratio', o.systems)
  const missed = (r: WatchRow) => (r.missed > 0 ? ` (${r.missed} missed)` : '')
  const cell = (r: WatchRow) => `${ms(r.p50)}${ms(r.p99)}${ms(r.max)}${missed(r)}`
  for (let i = 0; i < o.watchWarmup; i++)
    line(
      `(warm-up round ${i + 1})`,
      rounds.map((r) => cell(r[i] as WatchRow)),
      undefined,
    )
  line(`watch fan-out ${o.watchers}`, rows.map(cell), ratioOf(rows.map((r) => r.p99)))
  const busy = rows.map((r) => `${(r.clientBusy * 100).toFixed(0)}%`)
  line('(client thread busy, max)', busy, undefined)
  const floor = await startWatchFloor()
  running.add(floor)
  try {
    const r = (await watchRounds(floor, 0, o)).at(-1) as WatchRow
    console.log(
      `client floor: ${ms(r.p50)}${ms(r.p99)}${ms(r.max)} ms${missed(r)}, client busy ${(r.clientBusy * 100).toFixed(0)}%` +
        ' (the same row against servers that only write one pre-encoded response per watcher)',
    )
  } finally {
    await floor.stop()
    running.delete(floor)
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

async function memoryPart(clusters: BenchCluster[], o: Options): Promise<void> {
  const rows: MemoryRow[] = []
  for (const cluster of clusters) rows.push(await runMemory(cluster, o.keys))
  header(
    `memory: VmRSS, ${o.keys} keys of 256 bytes written at concurrency 64`,
    'resident',
    'ratio',
    o.systems,
  )
  const show = (label: string, pick: (r: MemoryRow) => number) =>
    line(
      label,
      rows.map((r) => mib(pick(r))),
      ratioOf(rows.map(pick)),
    )
  show('leader, empty', (r) => r.leaderEmptyBytes)
  show(`leader, ${o.keys} keys`, (r) => r.leaderBytes)
  show(`follower, ${o.keys} keys`, (r) => r.followerBytes)
  const fill = rows.map((r) => `${r.fillSeconds.toFixed(1)} s`)
  line('(fill time)', fill, ratioOf(rows.map((r) => r.fillSeconds)))
}

/**
 * The failover row: `failovers` rounds, each on fresh clusters (both systems per round, so noise
 * falls on both); one kill is one sample of an election whose timeout is randomized, so the row's
 * ratio is that of the medians.
 */
async function failoverPart(o: Options): Promise<void> {
  const rounds: FailoverRow[][] = []
  for (let i = 0; i < o.failovers; i++) {
    await withClusters(o.systems, async (clusters) => {
      const rows: FailoverRow[] = []
      for (const cluster of clusters) rows.push(await runFailover(cluster))
      rounds.push(rows)
    })
  }
  header(
    `failover: kill -9 of the leader under 200 writes/s, ${o.failovers} rounds on fresh clusters`,
    'recovery ms  failed/sent',
    'ratio',
    o.systems,
  )
  const cell = (r: FailoverRow) =>
    `${r.recoveryMs === undefined ? 'none' : r.recoveryMs.toFixed(0)}  ${r.failed}/${r.sent}`
  for (const [i, rows] of rounds.entries()) {
    line(`failover #${i + 1}`, rows.map(cell), ratioOf(rows.map((r) => r.recoveryMs)))
  }
  const medians = o.systems.map((_, s) => median(rounds.map((rows) => rows[s]?.recoveryMs)))
  line(
    'failover, median',
    medians.map((m) => (m === undefined ? 'none' : m.toFixed(0))),
    ratioOf(medians),
  )
  for (const [s, system] of o.systems.entries()) {
    const reasons = new Map<string, number>()
    let beforeKill = 0
    for (const rows of rounds) {
      const r = rows[s]
      if (r === undefined) continue
      beforeKill += r.failedBeforeKill
      for (const [reason, n] of r.failures) reasons.set(reason, (reasons.get(reason) ?? 0) + n)
    }
    const text = [...reasons].map(([reason, n]) => `${n} ${reason}`).join(', ')
    console.log(`  ${system} failed writes, all rounds: ${text || 'none'}`)
    if (beforeKill > 0) console.log(`  ${system}: ${beforeKill} writes failed before a kill`)
  }
}

function machine(): string {
  const etcd = spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout ?? ''
  return machineLine([`etcd ${/etcd Version: (\S+)/.exec(etcd)?.[1] ?? 'not installed'}`])
}

/** Sockets the watch row needs beyond one per watcher on each side (pools, peers, files). */
const fileHeadroom = 1_024

/** The soft limit on open files, which this process and the servers it starts inherit. */
function openFilesMax(): number {
  const out = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout?.trim() ?? ''
  return out === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out)
}

async function main(): Promise<void> {
  const o = parseOptions()
  if (o === undefined) return
  if (o.systems.includes('etcd') && !etcdAvailable()) {
    console.log('etcd-server is not installed: Cairn only (apt-get install etcd-server)')
    o.systems = o.systems.filter((s) => s !== 'etcd')
  }
  const files = openFilesMax()
  if (o.parts.includes('watch') && files < o.watchers + fileHeadroom)
    throw new UsageError(
      `ulimit -n is ${files}; ${o.watchers} watchers need ${o.watchers + fileHeadroom} (ulimit -n 20000)`,
    )
  console.log(`etcd-v2 bench: 3 members each on loopback, 256-byte values; ${machine()}`)
  console.log(`load average at start: ${loadAverage()}`)
  const parts = { kv: kvPart, watch: watchPart, memory: memoryPart }
  for (const part of o.parts) {
    if (part === 'failover') await failoverPart(o)
    else if (isScriptPart(part)) runScriptPart(part, o)
    else await withClusters(o.systems, (clusters) => parts[part](clusters, o))
  }
  console.log('')
  console.log(`load average at the end: ${loadAverage()}`)
}

const isScriptPart = (part: Part): part is keyof typeof scriptParts => part in scriptParts

function runScriptPart(part: keyof typeof scriptParts, o: Options): void {
  console.log('')
  const script = fileURLToPath(new URL(`./${scriptParts[part]}`, import.meta.url))
  const args = part === 'dns' ? ['--seconds', String(o.seconds)] : []
  const result = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { stdio: 'inherit' })
  if (result.status !== 0) console.log(`(${part} row failed: exit ${result.status ?? result.signal})`)
}

async function stopRunning(signal: NodeJS.Signals): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()))
  process.exit(signal === 'SIGINT' ? 130 : 143)
}
process.once('SIGINT', stopRunning)
process.once('SIGTERM', stopRunning)

try {
  await main()
} catch (error) {
  if (!(error instanceof UsageError)) throw error
  console.error(`etcd-v2 bench: ${error.message}`)
  process.exitCode = 2
}
