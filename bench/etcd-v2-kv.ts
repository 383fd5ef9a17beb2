/**
 * bench/etcd-v2-kv: the closed-loop rows. `concurrency` workers each send one request, wait for
 * the answer, send the next, for `seconds`; every request goes to the leader over a keep-alive
 * pool with one connection per worker. Writes are PUTs of 256-byte values; local reads are plain
 * GETs (served by the member from its own state); quorum reads add `quorum=true` (ReadIndex in
 * Cairn, a log entry in etcd 3.4's v2 API). Keys cycle over kvKeys keys written by fillKeys first,
 * so reads always hit.
 */
import { Pool } from 'undici'
import { type Percentiles, percentiles } from './etcd-v2-percentiles.ts'

export type KvOp = 'write' | 'local read' | 'quorum read'

export interface KvRow extends Percentiles {
  opsPerSecond: number
}

export const kvOps: KvOp[] = ['write', 'local read', 'quorum read']
export const valueBytes = 256
const value = 'x'.repeat(valueBytes)
export const kvKeys = 1_000
const kvPrefix = '/bench/k'

export function putRequest(key: string) {
  return {
    method: 'PUT' as const,
    path: `/v2/keys${key}`,
    body: `value=${value}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  }
}

export async function runKv(base: string, op: KvOp, concurrency: number, seconds: number): Promise<KvRow> {
  const pool = kvPool(base, concurrency)
  const latencies: number[] = []
  try {
    const elapsedSeconds = await measureKv(pool, op, concurrency, seconds, latencies)
    return kvRow(latencies, elapsedSeconds)
  } finally {
    await pool.close()
  }
}

/** One keep-alive connection per worker, no pipelining. */
export function kvPool(base: string, concurrency: number): Pool {
  return new Pool(base, { connections: concurrency, pipelining: 1 })
}

/**
 * Runs the closed loop on `pool` for `seconds`, pushing each answered request's latency (ms) onto
 * `latencies`; returns the seconds it took. A cell measured in slices calls it once per slice.
 */
export async function measureKv(
  pool: Pool,
  op: KvOp,
  concurrency: number,
  seconds: number,
  latencies: number[],
): Promise<number> {
  const deadline = performance.now() + seconds * 1000
  let n = 0
  const worker = async () => {
    while (performance.now() < deadline) {
      const key = `${kvPrefix}${n++ % kvKeys}`
      const start = performance.now()
      const res = await pool.request(
        op === 'write'
          ? putRequest(key)
          : { method: 'GET', path: `/v2/keys${key}${op === 'quorum read' ? '?quorum=true' : ''}` },
      )
      await res.body.dump()
      if (res.statusCode >= 300) throw new Error(`${op} ${key}: HTTP ${res.statusCode}`)
      latencies.push(performance.now() - start)
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  return (performance.now() - started) / 1000
}

export function kvRow(latencies: number[], elapsedSeconds: number): KvRow {
  return { ...percentiles(latencies), opsPerSecond: latencies.length / elapsedSeconds }
}

/** Writes `count` keys `<prefix><i>` with 256-byte values, `concurrency` at a time. */
export async function fillKeys(base: string, count: number, concurrency: number, prefix = kvPrefix) {
  const pool = new Pool(base, { connections: concurrency, pipelining: 1 })
  let next = 0
  const worker = async () => {
    while (next < count) {
      const key = `${prefix}${next++}`
      const res = await pool.request(putRequest(key))
      await res.body.dump()
      if (res.statusCode >= 300) throw new Error(`fill ${key}: HTTP ${res.statusCode}`)
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
  } finally {
    await pool.close()
  }
}
