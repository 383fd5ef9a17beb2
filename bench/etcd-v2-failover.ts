/**
 * bench/etcd-v2-failover: leader failover under a steady write load.
 *
 * Open loop: one PUT every 5 ms (200 writes/s), whatever the answers, each to the next member
 * still alive in rotation (a follower forwards the write to its leader; both systems do). After
 * steadyMs the leader (the member whose /v2/stats/self says StateLeader) gets SIGKILL. The row
 * reports
 *   - recovery: from the kill until the first acknowledgement (200/201) of a write sent after the
 *     kill. Writes sent before it do not count: one acknowledged just after the kill says nothing
 *     about the new leader;
 *   - failed: writes that got an error, a non-2xx answer or no answer within writeTimeoutMs, out
 *     of all writes sent. Writes in flight at the old leader fail by design; the rest is how
 *     each system treats requests while it has no leader (etcd 3.4 holds a v2 write for its
 *     request timeout, 5 s + 2 election timeouts, then fails it).
 * The load keeps going for afterMs past the recovery, then stops; the run waits for every write
 * in flight to end (at most writeTimeoutMs).
 */
import { Pool } from 'undici'
import type { BenchCluster } from './etcd-v2-cluster.ts'
import { leaderIndex } from './etcd-v2-cluster.ts'
import { putRequest } from './etcd-v2-kv.ts'

export interface FailoverRow {
  /** Milliseconds from the kill to the first acknowledged write sent after it; undefined: none. */
  recoveryMs: number | undefined
  failed: number
  sent: number
  /** Writes sent before the kill that failed (expected 0 on a healthy cluster). */
  failedBeforeKill: number
  /** Failed writes by reason: `HTTP <status>` or undici's error code (timeouts, resets). */
  failures: Map<string, number>
}

const writeIntervalMs = 5
const steadyMs = 2_000
const afterMs = 1_000
/** Longest the row waits for a write after the kill to succeed. */
const recoveryWaitMs = 20_000
const writeTimeoutMs = 10_000

interface Write {
  sentAt: number
  ok: boolean | undefined
  ackAt: number
  failure: string
}

async function sendWrite(pool: Pool, key: string, write: Write): Promise<void> {
  try {
    const res = await pool.request({
      ...putRequest(key),
      headersTimeout: writeTimeoutMs,
      bodyTimeout: writeTimeoutMs,
    })
    await res.body.dump()
    write.ok = res.statusCode === 200 || res.statusCode === 201
    if (!write.ok) write.failure = `HTTP ${res.statusCode}`
  } catch (error) {
    write.ok = false
    write.failure = (error as { code?: string }).code ?? String(error)
  }
  write.ackAt = performance.now()
}

export async function runFailover(cluster: BenchCluster): Promise<FailoverRow> {
  const leader = await leaderIndex(cluster)
  const pools = cluster.clientUrls.map((url) => new Pool(url, { pipelining: 1 }))
  const alive = cluster.clientUrls.map((_, i) => i)
  const writes: Write[] = []
  const inFlight: Promise<void>[] = []
  let killAt = Number.POSITIVE_INFINITY
  let stopped = false
  const load = async () => {
    const start = performance.now()
    while (!stopped) {
      const due = Math.floor((performance.now() - start) / writeIntervalMs)
      while (writes.length <= due) {
        const n = writes.length
        const write: Write = { sentAt: performance.now(), ok: undefined, ackAt: 0, failure: '' }
        writes.push(write)
        const pool = pools[alive[n % alive.length] as number] as Pool
        inFlight.push(sendWrite(pool, `/bench/failover/k${n}`, write))
      }
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }
  const recovered = () => writes.find((w) => w.sentAt >= killAt && w.ok === true)
  const loading = load()
  try {
    await new Promise((resolve) => setTimeout(resolve, steadyMs))
    alive.splice(alive.indexOf(leader), 1)
    killAt = performance.now()
    await cluster.kill(leader)
    const deadline = killAt + recoveryWaitMs
    while (recovered() === undefined && performance.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10))
    await new Promise((resolve) => setTimeout(resolve, afterMs))
  } finally {
    stopped = true
    await loading
    await Promise.all(inFlight)
    await Promise.all(pools.map((p) => p.destroy()))
  }
  const first = writes
    .filter((w) => w.sentAt >= killAt && w.ok === true)
    .reduce((a, w) => Math.min(a, w.ackAt), Number.POSITIVE_INFINITY)
  const failures = new Map<string, number>()
  for (const w of writes) if (w.ok !== true) failures.set(w.failure, (failures.get(w.failure) ?? 0) + 1)
  return {
    failures,
    recoveryMs: Number.isFinite(first) ? first - killAt : undefined,
    failed: writes.filter((w) => w.ok !== true).length,
    sent: writes.length,
    failedBeforeKill: writes.filter((w) => w.sentAt < killAt && w.ok !== true && w.ackAt < killAt).length,
  }
}
