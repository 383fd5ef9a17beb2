/**
 * bench/etcd-v2: Cairn against the real etcd, side by side, over the etcd v2 keys API.
 *
 * Starts a 3-member Cairn cluster (`cairn agent` processes) and, when Debian's etcd-server is
 * installed, a 3-member etcd with --enable-v2, both on random loopback ports. For each row
 * (writes, local reads, quorum reads at a given concurrency; 256-byte values) it runs Cairn then
 * etcd for the same duration, alternating so that machine noise falls on both, and prints ops/s,
 * p50 and p99 latency and the Cairn/etcd ratio. Requests go to each cluster's leader through a
 * keep-alive connection pool. Everything runs on this one machine: the load generator, six
 * servers; read the ratios, not the absolute numbers.
 *
 *   npx tsx bench/etcd-v2.ts [--seconds 3] [--concurrency 1,16,64]
 */
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { AgentCluster, spawnCairn } from '../test/helpers/agent-processes.ts'
import { etcdAvailable, startEtcd } from '../test/helpers/etcd.ts'

type Op = 'write' | 'local read' | 'quorum read'

interface Row {
  ops: number
  p50: number
  p99: number
}

const value = 'x'.repeat(256)
const keysPerRun = 1_000

async function runLoad(base: string, op: Op, concurrency: number, seconds: number): Promise<Row> {
  const pool = new Pool(base, { connections: concurrency, pipelining: 1 })
  const latencies: number[] = []
  const deadline = performance.now() + seconds * 1000
  let n = 0
  const worker = async () => {
    while (performance.now() < deadline) {
      const key = `/bench/k${n++ % keysPerRun}`
      const start = performance.now()
      const res =
        op === 'write'
          ? await pool.request({
              method: 'PUT',
              path: `/v2/keys${key}`,
              body: `value=${value}`,
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
            })
          : await pool.request({
              method: 'GET',
              path: `/v2/keys${key}${op === 'quorum read' ? '?quorum=true' : ''}`,
            })
      await res.body.dump()
      if (res.statusCode >= 300) throw new Error(`${op} ${key}: HTTP ${res.statusCode}`)
      latencies.push(performance.now() - start)
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - started) / 1000
  await pool.close()
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  return { ops: latencies.length / elapsed, p50: at(0.5), p99: at(0.99) }
}

async function fill(base: string): Promise<void> {
  const pool = new Pool(base, { connections: 32 })
  for (let i = 0; i < keysPerRun; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, async (_, j) => {
        const res = await pool.request({
          method: 'PUT',
          path: `/v2/keys/bench/k${i + j}`,
          body: `value=${value}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
        await res.body.dump()
      }),
    )
  }
  await pool.close()
}

async function leaderOf(urls: string[]): Promise<string> {
  for (let attempt = 0; attempt < 200; attempt++) {
    for (const url of urls) {
      try {
        const res = await fetch(`${url}/v2/stats/self`)
        const body = (await res.json()) as { state?: string }
        if (body.state === 'StateLeader') return url
      } catch {
        // not up yet
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`no leader among ${urls.join(', ')}`)
}

function fmt(row: Row | undefined): string {
  if (row === undefined) return `${'-'.padStart(9)} ${'-'.padStart(7)} ${'-'.padStart(7)}`
  return `${Math.round(row.ops).toString().padStart(9)} ${row.p50.toFixed(2).padStart(7)} ${row.p99.toFixed(2).padStart(7)}`
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '1,16,64' },
    },
  })
  const seconds = Number(values.seconds)
  const levels = values.concurrency.split(',').map(Number)
  const cairn = await AgentCluster.create(3)
  for (const name of cairn.names)
    cairn.running.set(name, spawnCairn([...cairn.args(name), '--log-level', 'warn'], name))
  const etcd = etcdAvailable() ? await startEtcd(3) : undefined
  try {
    const cairnLeader = await leaderOf(cairn.names.map((n) => cairn.clientUrl(n)))
    const etcdLeader = etcd === undefined ? undefined : await leaderOf(etcd.clientUrls)
    await fill(cairnLeader)
    if (etcdLeader !== undefined) await fill(etcdLeader)
    console.log(`etcd-v2 bench: 3 members each, 256-byte values, ${seconds} s per cell, leader endpoint`)
    if (etcd === undefined)
      console.log('etcd-server is not installed: Cairn only (apt-get install etcd-server)')
    console.log(
      `${'row'.padEnd(22)} ${'cairn ops/s'.padStart(9)} p50 ms  p99 ms | ${'etcd ops/s'.padStart(9)} p50 ms  p99 ms | ratio`,
    )
    for (const op of ['write', 'local read', 'quorum read'] as Op[]) {
      for (const c of levels) {
        const ours = await runLoad(cairnLeader, op, c, seconds)
        const theirs = etcdLeader === undefined ? undefined : await runLoad(etcdLeader, op, c, seconds)
        const ratio = theirs === undefined ? '' : (ours.ops / theirs.ops).toFixed(2)
        console.log(`${`${op} c=${c}`.padEnd(22)} ${fmt(ours)} | ${fmt(theirs)} | ${ratio}`)
      }
    }
  } finally {
    await cairn.destroy()
    await etcd?.stop()
  }
}

await main()
