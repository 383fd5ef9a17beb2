/**
 * bench/scheduler: the orchestrator figures of issue 6, each next to the published Kubernetes and
 * Docker Swarm figures (1 master + 3-4 nodes) and the goal.
 *
 * Four machines, all real processes on random loopback ports (bench/scheduler-cluster.ts): three
 * `cairn agent --server` (zone=a, b, c) and one client agent `cairn agent --join` (zone=d), each
 * running a unit runner; `--machine-ttl` is the default 3 s. Units are real processes started by
 * the runners: `/bin/sleep infinity` for the 100-unit rows, a tiny `node -e` HTTP server with an
 * HTTP check (CheckInterval=1s) for the rolling update. All calls are fleet v1 API calls over HTTP
 * to a server agent (one PUT per unit, all at once: what `cairn unit start --no-block` sends, without
 * the CLI's own start-up); progress is read from the same agent every --poll-ms.
 *
 *   start     100 sleepers started at once on an idle cluster, until all report active/running
 *   scale     1 sleeper running, 99 more started at once, until all 100 run
 *   rolling   10 web servers passing their check; a new template version (UpdateParallelism=1);
 *             until the rollout is done and all 10 report the new hash active and passing
 *   failure   kill -9 of the client agent (never the engine's server; --fail server picks a server
 *             that is neither the engine nor the Raft leader, --fail engine the engine's server)
 *             running 25 of the 100 sleepers,
 *             until all its units run on the other machines
 *   failure-1s  the same on a fresh cluster started with --machine-ttl 1000
 *
 *   npm run bench:scheduler
 *   npx tsx bench/scheduler.ts --runs 3 [--rows start,failure] [--parallelism 2] [--fail server]
 */

import { parseArgs } from 'node:util'
import { loadAverage, machineLine, median } from './bench-env.ts'
import { type SchedulerCluster, startSchedulerCluster } from './scheduler-cluster.ts'
import {
  cleanUp,
  failureRow,
  pickVictim,
  type RowResult,
  rollingRow,
  scaleRow,
  sleeperNames,
  startRow,
  type VictimKind,
} from './scheduler-rows.ts'

type Row = 'start' | 'scale' | 'rolling' | 'failure' | 'failure-1s'
const rowsInOrder: Row[] = ['start', 'scale', 'rolling', 'failure', 'failure-1s']
const units = 100

/** Published figures in seconds, as issue 6 quotes them (1 master + 3-4 nodes), and the goals. */
const published: Record<Row, { label: string; kubernetes: number; swarm: number; goal: number | undefined }> =
  {
    start: { label: 'start 100 units on 4 agents', kubernetes: 27.8, swarm: 22.2, goal: 3 },
    scale: { label: 'scale 1 to 100 instances', kubernetes: 25.3, swarm: 26.4, goal: 3 },
    rolling: { label: 'rolling update of 10', kubernetes: 7.1, swarm: 117, goal: 7 },
    failure: { label: 'machine failure, TTL 3 s', kubernetes: 304.8, swarm: 21, goal: 5 },
    'failure-1s': { label: 'machine failure, TTL 1 s', kubernetes: 304.8, swarm: 21, goal: 5 },
  }

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    rows: { type: 'string', default: rowsInOrder.join(',') },
    parallelism: { type: 'string', default: '1' },
    fail: { type: 'string', default: 'client' },
    'poll-ms': { type: 'string', default: '25' },
  },
})
const runs = Number(values.runs)
const parallelism = Number(values.parallelism)
const pollMs = Number(values['poll-ms'])
const rows = rowsInOrder.filter((r) => values.rows.split(',').includes(r))
const fail = values.fail
const bad = values.rows.split(',').filter((r) => !rowsInOrder.includes(r as Row))
if (
  bad.length > 0 ||
  !['client', 'server', 'engine'].includes(fail) ||
  ![runs, parallelism, pollMs].every((n) => n > 0)
) {
  console.error(
    `scheduler bench: --rows ${rowsInOrder.join(',')}; --fail client|server|engine; positive numbers`,
  )
  process.exit(2)
}

const running = new Set<SchedulerCluster>()
async function withCluster<T>(machineTtlMs: number, body: (c: SchedulerCluster) => Promise<T>): Promise<T> {
  const cluster = await startSchedulerCluster(machineTtlMs)
  running.add(cluster)
  try {
    return await body(cluster)
  } finally {
    await cluster.stop()
    running.delete(cluster)
  }
}

const s = (x: number | undefined, width = 8) => (x === undefined ? '-' : x.toFixed(2)).padStart(width)
function printRow(row: Row, seconds: number | undefined, prefix = ''): void {
  const p = published[row]
  const goal = p.goal === undefined ? '-' : `< ${p.goal}`
  const ratio = seconds === undefined ? '-' : (seconds / p.swarm).toFixed(3)
  const label = `${prefix}${p.label}`.padEnd(34)
  console.log(
    `${label}${s(seconds)} ${s(p.kubernetes, 10)} ${s(p.swarm, 8)} ${goal.padStart(7)} ${ratio.padStart(12)}`,
  )
}
function printHeader(): void {
  console.log(
    `${''.padEnd(34)}${'cairn s'.padStart(8)} ${'kubernetes s'.padStart(10)} ${'swarm s'.padStart(8)} ${'goal s'.padStart(7)} ${'cairn/swarm'.padStart(12)}`,
  )
}

function report(row: Row, result: RowResult): void {
  printRow(row, result.seconds)
  for (const note of result.notes) console.log(`    ${note}`)
}

/** One run: rows on one cluster (failure last, it kills a machine), failure-1s on its own. */
async function oneRun(): Promise<Map<Row, number>> {
  const figures = new Map<Row, number>()
  const keep = (row: Row, result: RowResult) => {
    figures.set(row, result.seconds)
    report(row, result)
  }
  const main = rows.filter((r) => r !== 'failure-1s')
  if (main.length > 0) {
    await withCluster(3_000, async (cluster) => {
      const url = cluster.machines[0]?.url as string
      const all = sleeperNames(1, units)
      if (rows.includes('start')) {
        keep('start', await startRow(url, units, pollMs))
        await cleanUp(url, all, undefined)
      }
      if (rows.includes('rolling')) keep('rolling', await rollingRow(url, parallelism, pollMs))
      if (rows.includes('scale')) keep('scale', await scaleRow(url, units, pollMs))
      else if (rows.includes('failure')) await startRow(url, units, pollMs)
      if (rows.includes('failure'))
        keep('failure', await failureRow(cluster, await pickVictim(cluster, fail as VictimKind), pollMs))
    })
  }
  if (rows.includes('failure-1s')) {
    await withCluster(1_000, async (cluster) => {
      await startRow(cluster.machines[0]?.url as string, units, pollMs)
      keep('failure-1s', await failureRow(cluster, await pickVictim(cluster, fail as VictimKind), pollMs))
    })
  }
  return figures
}

async function stopRunning(signal: NodeJS.Signals): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()))
  process.exit(signal === 'SIGINT' ? 130 : 143)
}
process.once('SIGINT', stopRunning)
process.once('SIGTERM', stopRunning)

console.log(
  'scheduler bench (issue 6): 3 server agents + 1 client agent on loopback, each a machine running units; ' +
    `${machineLine()}`,
)
console.log(
  `units: /bin/sleep (start, scale, failure), node -e HTTP server + CheckHTTP every 1 s (rolling); ` +
    `fleet v1 API, one PUT per unit, all at once; polled every ${pollMs} ms`,
)
console.log('published: Kubernetes / Docker Swarm on 1 master + 3-4 nodes, as quoted in issue 6')
console.log(`load average at start: ${loadAverage()}`)
const all = new Map<Row, number[]>()
for (let run = 1; run <= runs; run++) {
  console.log('')
  console.log(runs > 1 ? `run ${run} of ${runs}` : 'run')
  printHeader()
  for (const [row, seconds] of await oneRun()) all.set(row, [...(all.get(row) ?? []), seconds])
}
if (runs > 1) {
  console.log('')
  console.log(`median of ${runs} runs`)
  printHeader()
  for (const row of rows) printRow(row, median(all.get(row) ?? []))
  for (const row of rows)
    console.log(`    ${published[row].label}: ${(all.get(row) ?? []).map((x) => x.toFixed(2)).join(' / ')} s`)
}
console.log('')
console.log(`load average at the end: ${loadAverage()}`)
