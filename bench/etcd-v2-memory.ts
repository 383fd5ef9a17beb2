/**
 * bench/etcd-v2-memory: resident memory of a member holding `keys` keys of 256-byte values.
 *
 * On a fresh cluster: VmRSS of the leader and of one follower while empty, then the keys are
 * written through the leader `fillConcurrency` at a time, the follower is waited for (one more
 * key, written after every fill write was acknowledged, answers a local GET there), the members get settleMs
 * (docs/bench.md says why 5 s) to finish what the load left
 * (snapshots, Go's and V8's collectors run when they run: nothing is forced), and VmRSS is read
 * again. VmRSS is what the kernel holds for the whole process: for Cairn that includes Node, V8's
 * heap and the tsx loader that `bin/cairn` registers to run TypeScript; for etcd, the Go heap and
 * its bbolt file pages mapped in. Both run with their own default snapshot counts (Cairn 10,000,
 * etcd 100,000), so etcd's in-memory raft log holds every entry of the fill.
 */

import { Pool } from 'undici'
import type { BenchCluster } from './etcd-v2-cluster.ts'
import { leaderIndex, residentBytes } from './etcd-v2-cluster.ts'
import { fillKeys, putRequest } from './etcd-v2-kv.ts'

export interface MemoryRow {
  keys: number
  leaderEmptyBytes: number
  followerEmptyBytes: number
  leaderBytes: number
  followerBytes: number
  fillSeconds: number
}

const fillConcurrency = 64
const memoryPrefix = '/bench/mem/k'
const markerKey = '/bench/mem/filled'
const settleMs = 5_000
const followerWaitMs = 30_000

async function waitForKey(url: string, key: string): Promise<void> {
  const deadline = Date.now() + followerWaitMs
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/v2/keys${key}`, { signal: AbortSignal.timeout(2_000) })
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {
      // busy: try again
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${url} did not apply ${key} within ${followerWaitMs} ms`)
}

async function putMarker(url: string): Promise<void> {
  const pool = new Pool(url, { connections: 1 })
  try {
    const res = await pool.request(putRequest(markerKey))
    await res.body.dump()
    if (res.statusCode >= 300) throw new Error(`marker PUT: HTTP ${res.statusCode}`)
  } finally {
    await pool.close()
  }
}

export async function runMemory(cluster: BenchCluster, keys: number): Promise<MemoryRow> {
  const leader = await leaderIndex(cluster)
  const follower = leader === 0 ? 1 : 0
  const leaderEmptyBytes = residentBytes(cluster.pid(leader))
  const followerEmptyBytes = residentBytes(cluster.pid(follower))
  const started = performance.now()
  await fillKeys(cluster.clientUrls[leader] as string, keys, fillConcurrency, memoryPrefix)
  const fillSeconds = (performance.now() - started) / 1000
  await putMarker(cluster.clientUrls[leader] as string)
  await waitForKey(cluster.clientUrls[follower] as string, markerKey)
  await new Promise((resolve) => setTimeout(resolve, settleMs))
  return {
    keys,
    leaderEmptyBytes,
    followerEmptyBytes,
    leaderBytes: residentBytes(cluster.pid(leader)),
    followerBytes: residentBytes(cluster.pid(follower)),
    fillSeconds,
  }
}
