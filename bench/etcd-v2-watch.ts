/**
 * bench/etcd-v2-watch: watch fan-out. `watchers` one-shot long polls
 * (`GET /v2/keys/bench/watched?wait=true`) wait on one key, then one PUT changes it; per watcher
 * the row measures the time from just before the PUT is sent until that watcher's response is
 * complete (the event is in). It prints p50, p99 and max over the watchers.
 *
 * Where the watchers sit is the `placement`: `all` (the default) spreads them round-robin over
 * the 3 members, as clients of a real cluster are spread, so followers' apply and fan-out count
 * too; `leader` puts them all on the member that takes the PUT. Both systems get the same one.
 *
 * Registration is confirmed, not guessed: each watch's 200 head arrives at once (both servers
 * flush it before waiting), and then the sum of `watchers` over the members' /v2/stats/store must
 * reach the count before the PUT is sent. Watches are opened registerBatch at a time per thread
 * so that thousands of connects do not overflow a listen backlog.
 *
 * The client: each watch is a plain socket read by a minimal HTTP/1.1 response reader (an HTTP
 * library cost about 20 µs per response, 100 ms for 5,000), and the watchers are split over
 * `threads` worker threads (etcd-v2-watch-client.ts), each with its own loop, on the same cores as
 * the servers. The row also reports how busy the busiest client thread was between the PUT and its
 * last event: near 100% means the client, not the server, set the pace. Both systems are measured
 * by the same code in the same way; compare the ratio.
 */
import { Worker } from 'node:worker_threads'
import { Pool } from 'undici'
import type { BenchCluster } from './etcd-v2-cluster.ts'
import { putRequest } from './etcd-v2-kv.ts'
import { type Percentiles, percentiles } from './etcd-v2-percentiles.ts'
import { nowMs, type WatchClientData, type WatchClientMessage } from './etcd-v2-watch-client.ts'

export type WatchPlacement = 'all' | 'leader'

export interface WatchRow extends Percentiles {
  watchers: number
  /** Watches that ended without the event (an error, or still waiting at the deadline). */
  missed: number
  /** Busiest client thread's event-loop utilisation from the PUT to its last event, 0..1. */
  clientBusy: number
  /** When the PUT was sent, on the monotonic clock (ms), to line the row up with a CPU profile. */
  putAtMs: number
}

const watchedKey = '/bench/watched'
/** Watches one client thread opens at once before waiting for their heads. */
const registerBatch = 250
/** How long all watches may take to open and show in /v2/stats/store. */
const registerWaitMs = 60_000
/** How long after the PUT every watcher may take to get its event. */
const eventWaitMs = 30_000
const pollMs = 50

interface ClientThread {
  worker: Worker
  next(): Promise<WatchClientMessage>
}

/**
 * A worker thread does not inherit the tsx loader of the main thread (Node 20), so it starts
 * from a few lines of JavaScript that register tsx first, as bin/cairn does.
 */
const clientBootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.resolve('./etcd-v2-watch-client.ts'))}) })`

function startThread(data: WatchClientData): ClientThread {
  const worker = new Worker(clientBootstrap, { eval: true, workerData: data })
  const queue: WatchClientMessage[] = []
  const waiting: ((m: WatchClientMessage) => void)[] = []
  const deliver = (m: WatchClientMessage) => {
    const w = waiting.shift()
    if (w === undefined) queue.push(m)
    else w(m)
  }
  worker.on('message', deliver)
  worker.on('error', (error) => deliver({ type: 'failed', message: String(error) }))
  const next = () =>
    new Promise<WatchClientMessage>((resolve) => {
      const m = queue.shift()
      if (m === undefined) waiting.push(resolve)
      else resolve(m)
    })
  return { worker, next }
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

async function storeWatchers(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/v2/stats/store`, { signal: AbortSignal.timeout(2_000) })
    const body = (await res.json()) as { watchers?: number }
    return body.watchers ?? 0
  } catch {
    return 0
  }
}

async function waitRegistered(urls: string[], count: number): Promise<void> {
  const deadline = Date.now() + registerWaitMs
  for (;;) {
    const counts = await Promise.all(urls.map(storeWatchers))
    const total = counts.reduce((a, b) => a + b, 0)
    if (total >= count) return
    if (Date.now() > deadline)
      throw new Error(`only ${total} of ${count} watchers registered after ${registerWaitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}

async function put(url: string): Promise<void> {
  const pool = new Pool(url, { connections: 1 })
  try {
    const res = await pool.request(putRequest(watchedKey))
    await res.body.dump()
    if (res.statusCode >= 300) throw new Error(`PUT ${watchedKey}: HTTP ${res.statusCode}`)
  } finally {
    await pool.close()
  }
}

function startThreads(urls: string[], watchers: number, threads: number): ClientThread[] {
  const share = Math.ceil(watchers / threads)
  const result: ClientThread[] = []
  for (let first = 0; first < watchers; first += share) {
    const count = Math.min(share, watchers - first)
    const path = `/v2/keys${watchedKey}?wait=true`
    result.push(startThread({ urls, path, first, count, registerBatch }))
  }
  return result
}

async function expect<T extends WatchClientMessage['type']>(
  thread: ClientThread,
  type: T,
  ms: number,
): Promise<Extract<WatchClientMessage, { type: T }>> {
  const m = await withDeadline(thread.next(), ms, `watch client thread (${type})`)
  if (m.type === 'failed') throw new Error(m.message)
  if (m.type !== type) throw new Error(`watch client thread sent ${m.type}, expected ${type}`)
  return m as Extract<WatchClientMessage, { type: T }>
}

export async function runWatch(
  cluster: Pick<BenchCluster, 'clientUrls'>,
  leader: number,
  watchers: number,
  placement: WatchPlacement,
  threads: number,
): Promise<WatchRow> {
  const leaderUrl = cluster.clientUrls[leader] as string
  const urls = placement === 'leader' ? [leaderUrl] : cluster.clientUrls
  await put(leaderUrl)
  const clients = startThreads(urls, watchers, threads)
  try {
    await Promise.all(clients.map((c) => expect(c, 'registered', registerWaitMs)))
    await waitRegistered(urls, watchers)
    for (const c of clients) c.worker.postMessage('start')
    const sentAtMs = nowMs()
    await put(leaderUrl)
    const timer = setTimeout(() => {
      for (const c of clients) c.worker.postMessage('report')
    }, eventWaitMs)
    const reports = await Promise.all(clients.map((c) => expect(c, 'done', eventWaitMs + 5_000)))
    clearTimeout(timer)
    const latencies = reports.flatMap((r) =>
      [...r.doneAtMs].filter((t) => !Number.isNaN(t)).map((t) => t - sentAtMs),
    )
    const clientBusy = Math.max(...reports.map((r) => r.busy))
    return {
      ...percentiles(latencies),
      watchers,
      missed: watchers - latencies.length,
      clientBusy,
      putAtMs: sentAtMs,
    }
  } finally {
    await Promise.all(clients.map((c) => c.worker.terminate()))
  }
}
